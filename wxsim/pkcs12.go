package wxsim

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"unicode/utf16"
)

// A minimal PKCS#12 (RFC 7292) encoder for WeChat-style apiclient_cert.p12
// files: one certificate bag (in an encrypted content) and one shrouded key
// bag, both with pbeWithSHAAnd3-KeyTripleDES-CBC, and a SHA-1 HMAC over the
// whole, all keyed with the password as a BMPString. That is the layout
// WeChat's own files use and what golang.org/x/crypto/pkcs12 and OpenSSL
// read. The standard library has no PKCS#12 encoder.

var (
	oidData                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidPBEWithSHAAnd3DESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidCertBag              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidShroudedKeyBag       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidX509Certificate      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidLocalKeyID           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidFriendlyName         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidSHA1                 = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
)

const pkcs12Iterations = 2048

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, built by explicit0
}

type p12EncryptedData struct {
	Version              int
	EncryptedContentInfo p12EncryptedContentInfo
}

type p12EncryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           []byte `asn1:"tag:0,optional"`
}

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData
}

type p12MacData struct {
	Mac        p12DigestInfo
	MacSalt    []byte
	Iterations int
}

type p12DigestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue      // [0] EXPLICIT, built by explicit0
	Attributes []p12BagAttributes `asn1:"set,optional"`
}

type p12BagAttributes struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue // a SET holding one value
}

type p12CertBag struct {
	ID   asn1.ObjectIdentifier
	Data []byte `asn1:"tag:0,explicit"`
}

type p12EncryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type p12PBEParams struct {
	Salt       []byte
	Iterations int
}

// encodePKCS12 returns the DER of a PFX holding certDER and key (any key
// x509.MarshalPKCS8PrivateKey accepts), protected by password.
func encodePKCS12(certDER []byte, key any, password, friendlyName string) ([]byte, error) {
	pw := bmpString(password)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(certDER)
	attrs, err := bagAttributes(sum[:], friendlyName)
	if err != nil {
		return nil, err
	}

	// The certificate bag, inside an encrypted content.
	cb, err := asn1.Marshal(p12CertBag{ID: oidX509Certificate, Data: certDER})
	if err != nil {
		return nil, err
	}
	certContents, err := asn1.Marshal([]p12SafeBag{{ID: oidCertBag, Value: explicit0(cb), Attributes: attrs}})
	if err != nil {
		return nil, err
	}
	alg, ct, err := pbeEncrypt(certContents, pw)
	if err != nil {
		return nil, err
	}
	ed, err := asn1.Marshal(p12EncryptedData{Version: 0, EncryptedContentInfo: p12EncryptedContentInfo{
		ContentType: oidData, ContentEncryptionAlgorithm: alg, EncryptedContent: ct,
	}})
	if err != nil {
		return nil, err
	}

	// The shrouded key bag, inside a plain data content.
	kalg, kct, err := pbeEncrypt(keyDER, pw)
	if err != nil {
		return nil, err
	}
	epki, err := asn1.Marshal(p12EncryptedPrivateKeyInfo{Algorithm: kalg, EncryptedData: kct})
	if err != nil {
		return nil, err
	}
	keyContents, err := asn1.Marshal([]p12SafeBag{{ID: oidShroudedKeyBag, Value: explicit0(epki), Attributes: attrs}})
	if err != nil {
		return nil, err
	}
	keyData, err := asn1.Marshal(keyContents) // an OCTET STRING
	if err != nil {
		return nil, err
	}

	authSafe, err := asn1.Marshal([]p12ContentInfo{
		{ContentType: oidEncryptedData, Content: explicit0(ed)},
		{ContentType: oidData, Content: explicit0(keyData)},
	})
	if err != nil {
		return nil, err
	}
	authSafeData, err := asn1.Marshal(authSafe) // an OCTET STRING
	if err != nil {
		return nil, err
	}

	macSalt := make([]byte, 8)
	if _, err := rand.Read(macSalt); err != nil {
		return nil, err
	}
	macKey := pkcs12KDF(3, pw, macSalt, pkcs12Iterations, 20)
	mac := hmac.New(sha1.New, macKey)
	mac.Write(authSafe)
	return asn1.Marshal(p12PFX{
		Version:  3,
		AuthSafe: p12ContentInfo{ContentType: oidData, Content: explicit0(authSafeData)},
		MacData: p12MacData{
			Mac:        p12DigestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA1, Parameters: asn1.NullRawValue}, Digest: mac.Sum(nil)},
			MacSalt:    macSalt,
			Iterations: pkcs12Iterations,
		},
	})
}

// explicit0 wraps DER in a context-specific [0] constructed tag. (An
// asn1.RawValue with FullBytes is written verbatim, ignoring struct tags.)
func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

func bagAttributes(localKeyID []byte, friendlyName string) ([]p12BagAttributes, error) {
	id, err := asn1.Marshal(localKeyID)
	if err != nil {
		return nil, err
	}
	idSet, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: id})
	if err != nil {
		return nil, err
	}
	attrs := []p12BagAttributes{{ID: oidLocalKeyID, Value: asn1.RawValue{FullBytes: idSet}}}
	if friendlyName != "" {
		name, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagBMPString, Bytes: bmpString(friendlyName)[:len(bmpString(friendlyName))-2]})
		if err != nil {
			return nil, err
		}
		nameSet, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: name})
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, p12BagAttributes{ID: oidFriendlyName, Value: asn1.RawValue{FullBytes: nameSet}})
	}
	return attrs, nil
}

// pbeEncrypt encrypts with pbeWithSHAAnd3-KeyTripleDES-CBC and a fresh salt.
func pbeEncrypt(plain, pw []byte) (pkix.AlgorithmIdentifier, []byte, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	params, err := asn1.Marshal(p12PBEParams{Salt: salt, Iterations: pkcs12Iterations})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	key := pkcs12KDF(1, pw, salt, pkcs12Iterations, 24)
	iv := pkcs12KDF(2, pw, salt, pkcs12Iterations, 8)
	block, err := des.NewTripleDESCipher(key)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	n := des.BlockSize - len(plain)%des.BlockSize
	buf := make([]byte, len(plain)+n)
	copy(buf, plain)
	for i := len(plain); i < len(buf); i++ {
		buf[i] = byte(n)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return pkix.AlgorithmIdentifier{Algorithm: oidPBEWithSHAAnd3DESCBC, Parameters: asn1.RawValue{FullBytes: params}}, buf, nil
}

// bmpString is the PKCS#12 password form: UTF-16 big-endian with a
// two-byte terminator.
func bmpString(s string) []byte {
	u := utf16.Encode([]rune(s))
	out := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		out = append(out, byte(c>>8), byte(c))
	}
	return append(out, 0, 0)
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2 with SHA-1
// (u = 20, v = 64): id 1 makes keys, 2 IVs, 3 MAC keys.
func pkcs12KDF(id byte, password, salt []byte, iterations, size int) []byte {
	const u, v = 20, 64
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	fill := func(src []byte) []byte {
		if len(src) == 0 {
			return nil
		}
		out := make([]byte, v*((len(src)+v-1)/v))
		for i := range out {
			out[i] = src[i%len(src)]
		}
		return out
	}
	I := append(fill(salt), fill(password)...)
	var out []byte
	for len(out) < size {
		h := sha1.New()
		h.Write(d)
		h.Write(I)
		a := h.Sum(nil)
		for r := 1; r < iterations; r++ {
			s := sha1.Sum(a)
			a = s[:]
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		b := make([]byte, v)
		for i := range b {
			b[i] = a[i%u]
		}
		// I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block.
		for j := 0; j < len(I); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				x := int(I[j+k]) + int(b[k]) + carry
				I[j+k] = byte(x)
				carry = x >> 8
			}
		}
	}
	return out[:size]
}
