package wxcrypto_test

import "os"

// TEST-ONLY keys, read from apiv3/testdata (see its README.txt): they
// protect nothing. PKCS#1 v1.5 signatures are deterministic, so the tests
// pin signatures made with them; the pins were checked with openssl.
var (
	merchantKeyPEM      = testdata("merchant_key.pem")       // PKCS#8
	merchantKeyPKCS1PEM = testdata("merchant_key_pkcs1.pem") // the same key as PKCS#1
	platformKeyPEM      = testdata("platform_key.pem")
	merchantCertPEM     = testdata("merchant_cert.pem")
)

// testdata reads a file of apiv3/testdata, the one copy of the test keys.
func testdata(name string) string {
	b, err := os.ReadFile("../apiv3/testdata/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}
