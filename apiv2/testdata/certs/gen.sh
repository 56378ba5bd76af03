#!/bin/sh
# Regenerates the TEST-ONLY certificates of this directory (see README.txt).
# Needs OpenSSL 1.1 or 3.x. Run from this directory: sh gen.sh
set -eu
days=36500
mch=1225312702

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days $days \
	-subj "/O=wxpay-go test/CN=wxpay-go test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-keyout ca.key -out ca.pem

openssl req -newkey rsa:2048 -nodes -sha256 \
	-subj "/O=wxpay-go test/CN=127.0.0.1" -keyout server.key -out server.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-days $days -sha256 -extfile server.ext -out server.pem

# The merchant's client certificate, named as WeChat Pay names it.
openssl req -newkey rsa:2048 -nodes -sha256 \
	-subj "/O=wxpay-go test/OU=$mch/CN=$mch" -keyout apiclient_key.pem -out client.csr
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-days $days -sha256 -extfile client.ext -out apiclient_cert.pem

# PKCS#12 with the legacy algorithms golang.org/x/crypto/pkcs12 decodes
# (3DES, SHA-1 MAC), password = the merchant id, as WeChat issued it.
openssl pkcs12 -export -in apiclient_cert.pem -inkey apiclient_key.pem \
	-keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 \
	-passout pass:$mch -out apiclient_cert.p12

rm -f server.csr client.csr server.ext client.ext ca.srl
