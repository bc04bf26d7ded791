// Command vcsim-launcher runs govmomi's vCenter simulator for the
// vmcrypt.backup integration tests and benchmarks.
//
// It serves HTTPS on a free loopback port, prints one JSON line describing
// the endpoint when it is ready, and exits on SIGTERM/SIGINT or when stdin
// closes, so a crashed test run never leaves a simulator behind.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"

	// Registers the /pbm endpoint (storage policies) on VPX models.
	_ "github.com/vmware/govmomi/pbm/simulator"
)

// options are the command-line settings of one simulator run.
type options struct {
	datacenters      int
	clusters         int
	hostsPerCluster  int
	standaloneHosts  int
	vmsPerPool       int
	poolsPerCluster  int
	datastores       int
	autostart        bool
	apiVersion       string
	username         string
	password         string
	extraLogins      loginList
	groups           groupList
	certFile         string
	datastoreDir     string
	exitOnStdinClose bool
	trace            bool
}

// loginList collects repeated -login user=password flags.
type loginList map[string]string

func (l loginList) String() string { return fmt.Sprintf("%d logins", len(l)) }

func (l loginList) Set(value string) error {
	user, password, ok := strings.Cut(value, "=")
	if !ok || user == "" || password == "" {
		return fmt.Errorf("want user=password, got %q", value)
	}
	l[user] = password
	return nil
}

func parseFlags() *options {
	opts := &options{extraLogins: loginList{}, groups: groupList{}}
	flag.IntVar(&opts.datacenters, "dc", 1, "number of datacenters")
	flag.IntVar(&opts.clusters, "cluster", 1, "clusters per datacenter")
	flag.IntVar(&opts.hostsPerCluster, "host", 2, "hosts per cluster")
	flag.IntVar(&opts.standaloneHosts, "standalone-host", 0, "standalone hosts per datacenter")
	flag.IntVar(&opts.vmsPerPool, "vm", 2, "VMs per resource pool (each cluster and standalone host has a root pool)")
	flag.IntVar(&opts.poolsPerCluster, "pool", 0, "child resource pools per cluster (VMs then go into the child pools)")
	flag.IntVar(&opts.datastores, "ds", 1, "local datastores per datacenter, mounted on every host")
	flag.BoolVar(&opts.autostart, "autostart", false, "power on the VMs the model creates")
	flag.StringVar(&opts.apiVersion, "api-version", "8.0.3.0", "vSphere API version served (about.apiVersion, vimServiceVersions.xml)")
	flag.StringVar(&opts.username, "username", "administrator@vsphere.local", "administrator login")
	flag.StringVar(&opts.password, "password", "vcsim-Passw0rd!", "administrator password")
	flag.Var(opts.extraLogins, "login", "extra user=password that may log in (repeatable)")
	flag.Var(opts.groups, "group", "directory group and its members, 'DOMAIN\\group=user@domain,...' (repeatable)")
	flag.StringVar(&opts.certFile, "cert-file", "", "where to write the server certificate PEM (default: inside the simulator home)")
	flag.StringVar(&opts.datastoreDir, "datastore-dir", "", "parent directory of the simulator home holding the datastore folders (default: $TMPDIR)")
	flag.BoolVar(&opts.exitOnStdinClose, "exit-on-stdin-close", true, "exit when stdin reaches EOF")
	flag.BoolVar(&opts.trace, "trace", false, "trace SOAP traffic to stderr")
	flag.Parse()
	return opts
}

// readyLine is the single JSON line printed on stdout once the server listens.
type readyLine struct {
	URL        string            `json:"url"`
	Host       string            `json:"host"`
	Port       int               `json:"port"`
	Username   string            `json:"username"`
	Password   string            `json:"password"`
	Thumbprint string            `json:"thumbprint"`
	CertFile   string            `json:"cert_file"`
	APIVersion string            `json:"api_version"`
	Home       string            `json:"home"`
	Datastores map[string]string `json:"datastores"`
	PID        int               `json:"pid"`
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("vcsim-launcher: ")
	opts := parseFlags()
	simulator.Trace = opts.trace

	model, err := buildModel(opts)
	if err != nil {
		log.Fatalf("building the inventory: %v", err)
	}
	defer model.Remove()

	registerExtensions(model, opts)

	cert, err := newSelfSignedCert()
	if err != nil {
		log.Fatalf("creating the TLS certificate: %v", err)
	}
	home := simulatorHome(model)
	certFile := opts.certFile
	if certFile == "" {
		certFile = home + "/server.pem"
	}
	if err := os.WriteFile(certFile, cert.pem, 0o644); err != nil {
		log.Fatalf("writing %s: %v", certFile, err)
	}

	server := startServer(model, opts, cert)
	defer server.Close()

	port, _ := strconv.Atoi(server.URL.Port())
	ready := readyLine{
		URL:        (&url.URL{Scheme: server.URL.Scheme, Host: server.URL.Host, Path: server.URL.Path}).String(),
		Host:       server.URL.Hostname(),
		Port:       port,
		Username:   opts.username,
		Password:   opts.password,
		Thumbprint: cert.thumbprint,
		CertFile:   certFile,
		APIVersion: opts.apiVersion,
		Home:       home,
		Datastores: datastorePaths(model),
		PID:        os.Getpid(),
	}
	line, err := json.Marshal(ready)
	if err != nil {
		log.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, string(line))
	if err := out.Flush(); err != nil {
		log.Fatal(err)
	}

	waitForShutdown(opts.exitOnStdinClose)
}

// buildModel creates the VPX inventory sized by the flags.
func buildModel(opts *options) (*simulator.Model, error) {
	model := simulator.VPX()
	model.Datacenter = opts.datacenters
	model.Cluster = opts.clusters
	model.ClusterHost = opts.hostsPerCluster
	model.Host = opts.standaloneHosts
	model.Machine = opts.vmsPerPool
	model.Pool = opts.poolsPerCluster
	model.Datastore = opts.datastores
	model.Autostart = opts.autostart
	model.ServiceContent.About.ApiVersion = opts.apiVersion
	model.ServiceContent.About.Version = versionFromAPI(opts.apiVersion)
	model.ServiceContent.About.FullName = "VMware vCenter Server " + model.ServiceContent.About.Version + " (govmomi simulator)"

	// The model puts its home (and so every datastore folder) in a fresh
	// directory under os.TempDir(), which follows $TMPDIR.
	if opts.datastoreDir != "" {
		if err := os.MkdirAll(opts.datastoreDir, 0o755); err != nil {
			return nil, err
		}
		previous, had := os.LookupEnv("TMPDIR")
		os.Setenv("TMPDIR", opts.datastoreDir)
		defer func() {
			if had {
				os.Setenv("TMPDIR", previous)
			} else {
				os.Unsetenv("TMPDIR")
			}
		}()
	}
	return model, model.Create()
}

// versionFromAPI turns "8.0.3.0" into the product version "8.0.3".
func versionFromAPI(apiVersion string) string {
	parts := strings.Split(apiVersion, ".")
	if len(parts) > 3 {
		parts = parts[:3]
	}
	return strings.Join(parts, ".")
}

func startServer(model *simulator.Model, opts *options, cert *serverCert) *simulator.Server {
	model.Service.RegisterEndpoints = true
	model.Service.Listen = &url.URL{
		Host: net.JoinHostPort("127.0.0.1", "0"),
		User: url.UserPassword(opts.username, opts.password),
	}
	model.Service.TLS = cert.tlsConfig()
	allowLogins(model, opts)
	return model.Service.NewServer()
}

// waitForShutdown blocks until a termination signal arrives or, if asked,
// until the parent closes our stdin (which also happens when it dies).
func waitForShutdown(exitOnStdinClose bool) {
	done := make(chan string, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() { done <- (<-signals).String() }()
	if exitOnStdinClose {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- "stdin closed"
		}()
	}
	log.Printf("stopping: %s", <-done)
}
