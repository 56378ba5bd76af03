package main

import (
	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/config"
)

func readSecretFile(path string) (wxpay.Secret, error) { return config.ReadSecretFile(path) }
