package rp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a throwaway CA that signs test certificates, made at run time.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf signs a certificate for subject with DNS names and IP addresses; PEM certificate and key.
func (ca *testCA) leaf(t *testing.T, subject pkix.Name, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func TestTLSMutualRoundTripIdentityAndRefusals(t *testing.T) {
	ca := newTestCA(t, "go test CA")
	serverCert, serverKey := ca.leaf(t, pkix.Name{CommonName: "push server"}, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.leaf(t, pkix.Name{CommonName: "go-worker", Organization: []string{"librp tests"}}, []string{"go-worker.example"}, nil, x509.ExtKeyUsageClientAuth)

	var mu sync.Mutex
	var seen *WorkerInfo
	server, err := Bind("tls://127.0.0.1:0", &ServerOptions{
		TLS: &ServerTLS{CertChainPEM: serverCert, KeyPEM: serverKey, ClientCAPEM: ca.pem},
		OnRegister: func(w *WorkerInfo) (bool, string) {
			mu.Lock()
			seen = w
			mu.Unlock()
			return true, ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if !strings.HasPrefix(server.Endpoint(), "tls://127.0.0.1:") {
		t.Fatalf("endpoint %q", server.Endpoint())
	}
	ctx, cancel := context.WithCancel(context.Background())
	dispatching := make(chan struct{})
	go func() {
		defer close(dispatching)
		for ctx.Err() == nil {
			short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
			_, _ = server.Dispatch(short)
			stop()
		}
	}()
	defer func() { cancel(); <-dispatching }()

	opts := WorkerOptions{
		Identity: "go-tls-worker", TaskQueue: "q", PayloadProtocols: []uint32{0x7001},
		TLS: &WorkerTLS{CAPEM: ca.pem, CertChainPEM: clientCert, KeyPEM: clientKey},
	}
	worker, err := Connect(ctxTimeout(t, 5*time.Second), server.Endpoint(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	mu.Lock()
	got := seen
	mu.Unlock()
	// Go writes the organization before the common name; librp keeps the certificate's order.
	if got == nil || !got.TLSVerified || got.TLSSubject != "O=librp tests,CN=go-worker" || len(got.TLSSANs) != 1 || got.TLSSANs[0] != "DNS:go-worker.example" {
		t.Fatalf("registration saw %+v", got)
	}
	go func() {
		if p, err := worker.Recv(context.Background()); err == nil {
			_ = worker.Reply(p.CorrelationID, append([]byte("echo:"), p.Payload...))
		}
	}()
	res, err := server.PushWait(ctxTimeout(t, 5*time.Second), &PushRequest{PayloadProtocol: 0x7001, Payload: []byte("go"), ToTaskQueue: "q"})
	if err != nil || string(res.Payload) != "echo:go" {
		t.Fatalf("push: %v %+v", err, res)
	}

	// Each refusal: its error and words.
	for _, c := range []struct {
		name  string
		tls   *WorkerTLS
		want  error
		words string
	}{
		{"no client certificate", &WorkerTLS{CAPEM: ca.pem}, ErrPermissionDenied, "client certificate"},
		{"unknown CA", &WorkerTLS{CAPEM: newTestCA(t, "other").pem, CertChainPEM: clientCert, KeyPEM: clientKey}, ErrPermissionDenied, "unknown CA"},
		{"wrong name", &WorkerTLS{CAPEM: ca.pem, ServerName: "elsewhere.example", CertChainPEM: clientCert, KeyPEM: clientKey}, ErrPermissionDenied, "wrong name"},
	} {
		o := opts
		o.TLS = c.tls
		_, err := Connect(ctxTimeout(t, 5*time.Second), server.Endpoint(), o)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.words) {
			t.Errorf("%s: got %v", c.name, err)
		}
	}
	// A plain tcp:// worker at the TLS port is refused and told to use tls://.
	plain := "tcp://" + strings.TrimPrefix(server.Endpoint(), "tls://")
	_, err = Connect(ctxTimeout(t, 5*time.Second), plain, WorkerOptions{Identity: "plain", PayloadProtocols: []uint32{0x7001}})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "tls://") {
		t.Errorf("plain client: got %v", err)
	}
}

func TestTLSServerOptionsAreChecked(t *testing.T) {
	if _, err := Bind("tls://127.0.0.1:0", nil); !errors.Is(err, ErrConfig) {
		t.Errorf("tls:// without a certificate: %v", err)
	}
	if _, err := Bind("tls://127.0.0.1:0", &ServerOptions{TLS: &ServerTLS{CertChainPEM: []byte("nope"), KeyPEM: []byte("nope")}}); !errors.Is(err, ErrConfig) {
		t.Errorf("garbage PEM: %v", err)
	}
}

// A broker names a tls:// backend (here a Go TLS server that echoes raw bytes): ConnectBroker
// reaches it with BrokerOptions.TLS, a frame goes there and back; an unknown CA is refused
// with ErrPermissionDenied.
func TestBrokerClientReachesTLSBackend(t *testing.T) {
	ca := newTestCA(t, "go backend CA")
	certPEM, keyPEM := ca.leaf(t, pkix.Name{CommonName: "backend"}, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	backend := "tls://" + ln.Addr().String()
	b := startBroker(t, &BrokerServerOptions{Services: []BrokerService{{Name: "echo", Backend: backend, DaemonVersion: "1.0.0"}}})
	opts := BrokerOptions{Endpoint: b.Endpoint(), Service: "echo", WantedVersion: "1.0.0", TLS: &ClientTLS{CAPEM: ca.pem}}
	c, res, err := ConnectBroker(ctxTimeout(t, 10*time.Second), opts)
	if err != nil {
		t.Fatalf("ConnectBroker: %v", err)
	}
	defer c.Close()
	if res.Route != RouteNegotiated || res.Endpoint != backend {
		t.Fatalf("result %+v", res)
	}
	if err := c.Send(&Frame{PayloadProtocol: 0x7001, RequestID: 7, Payload: []byte("over tls")}); err != nil {
		t.Fatal(err)
	}
	f, err := c.Recv(ctxTimeout(t, 5*time.Second))
	if err != nil || f.RequestID != 7 || string(f.Payload) != "over tls" {
		t.Fatalf("echo: %+v %v", f, err)
	}

	opts.TLS = &ClientTLS{CAPEM: newTestCA(t, "other").pem}
	_, _, err = ConnectBroker(ctxTimeout(t, 10*time.Second), opts)
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "unknown CA") {
		t.Fatalf("unknown CA: %v", err)
	}
}
