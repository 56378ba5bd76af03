module github.com/wxpay-go/wxpay

go 1.26
