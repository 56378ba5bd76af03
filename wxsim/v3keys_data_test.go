package wxsim_test

import "os"

// TEST-ONLY keys, read from apiv3/testdata (see its README.txt): they
// protect nothing. Never configure them for a real merchant.
var (
	testMerchantKeyPEM  = testdata("merchant_key.pem")
	testMerchantCertPEM = testdata("merchant_cert.pem")
	testPlatformKeyPEM  = testdata("platform_key.pem")
	testPlatform2KeyPEM = testdata("platform2_key.pem")
	testPubKeyKeyPEM    = testdata("pubkey_key.pem")
)

// testdata reads a file of apiv3/testdata, the one copy of the test keys.
func testdata(name string) string {
	b, err := os.ReadFile("../apiv3/testdata/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}
