package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// serverCert is a self-signed loopback certificate, so tests can verify TLS
// against cert_file or pin the SHA-1 thumbprint like vSphere clients do.
type serverCert struct {
	pair       tls.Certificate
	pem        []byte
	thumbprint string
}

func newSelfSignedCert() (*serverCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"vmcrypt.backup vcsim"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // lets the PEM double as its own CA bundle
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &serverCert{
		pair:       tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem:        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		thumbprint: sha1Thumbprint(der),
	}, nil
}

// sha1Thumbprint formats like vSphere: upper-case hex pairs joined by colons.
func sha1Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(pairs, ":")
}

func (c *serverCert) tlsConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.pair}}
}
