#!/bin/sh
# Regenerates the TEST-ONLY keys of this directory (see README.txt).
# The tests pin signatures made with these keys: regenerating them means
# updating the pinned vectors in the tests.
set -e
cd "$(dirname "$0")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out merchant_key.pem
openssl rsa -in merchant_key.pem -traditional -out merchant_key_pkcs1.pem
openssl req -new -x509 -key merchant_key.pem -days 36500 -set_serial 0x3775B6A45ACD50A9E5AE60E4F94A8F4C5C45D8F8 \
	-subj "/CN=1900009191/O=wxpay-go test merchant/OU=test only" -out merchant_cert.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out platform_key.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out platform2_key.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out pubkey_key.pem
openssl pkey -in pubkey_key.pem -pubout -out pub_key.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out small_key.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec_key.pem
