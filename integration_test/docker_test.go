package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// The Docker backend. The engine has no registry to pull from, so the image
// is built from scratch out of the host's memcached and its libraries
// (scripts/memcached-image.sh collects them) and tagged with a hash of the
// collected files: an unchanged host reuses it. memcached runs under
// `timeout -s KILL 1800`: a container that a killed or crashed run left
// behind stops by itself within 30 minutes (and the next run sweeps it).
// Nodes run on a user-defined
// bridge network the harness creates; each publishes memcached's port on
// 127.0.0.1 only, at a port the harness picks, so that a restarted
// container keeps its address. Clients only ever connect to those loopback
// ports, never to container addresses. Containers and networks carry labels
// naming the run (and its process); a run removes its own in t.Cleanup and
// at exit, and sweeps those of runs whose process is gone at start.

const (
	labelRun   = "libmemcached-go.it"      // value: the run's id
	labelPID   = "libmemcached-go.it.pid"  // the test process that owns it
	labelHost  = "libmemcached-go.it.host" // the host that process runs on
	imageRepo  = "libmemcached-go-it/memcached"
	memcPort   = dc.Port("11211/tcp")
	dockerfile = `FROM scratch
COPY rootfs/ /
ENV SASL_CONF_PATH=/etc/sasl2
EXPOSE 11211
ENTRYPOINT ["/usr/bin/timeout", "-s", "KILL", "1800", "/usr/bin/memcached", "-u", "root"]
`
)

type dockerBackend struct {
	pool    *dockertest.Pool
	image   string
	network *dc.Network
	runID   string
	labels  map[string]string
	desc    string

	mu    sync.Mutex
	nodes map[*dockerNode]bool
}

func newDockerBackend() (*dockerBackend, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, fmt.Errorf("docker client: %v", err)
	}
	// Every Docker API call is bounded; the image build is the slowest.
	pool.Client.SetTimeout(2 * time.Minute)
	pool.MaxWait = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pool.Client.PingWithContext(ctx); err != nil {
		return nil, fmt.Errorf("docker engine at %s does not answer: %v", pool.Client.Endpoint(), err)
	}
	host, _ := os.Hostname()
	var rb [4]byte
	rand.Read(rb[:])
	b := &dockerBackend{
		pool:  pool,
		runID: fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(rb[:])),
		nodes: make(map[*dockerNode]bool),
	}
	b.labels = map[string]string{labelRun: b.runID, labelPID: strconv.Itoa(os.Getpid()), labelHost: host}
	swept := b.sweep()
	built, took, err := b.buildImage()
	if err != nil {
		return nil, err
	}
	nw, err := pool.Client.CreateNetwork(dc.CreateNetworkOptions{
		Name:   "libmemcached-go-it-" + b.runID,
		Driver: "bridge",
		Labels: b.labels,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the test network: %v", err)
	}
	b.network = nw
	version := "?"
	if env, err := pool.Client.Version(); err == nil {
		version = env.Get("Version")
	}
	how := "reused"
	if built {
		how = fmt.Sprintf("built in %v", took.Round(time.Millisecond))
	}
	b.desc = fmt.Sprintf("engine %s at %s; image %s %s; network %s; swept %d leftovers",
		version, pool.Client.Endpoint(), b.image, how, nw.Name, swept)
	return b, nil
}

func (b *dockerBackend) Name() string     { return "docker" }
func (b *dockerBackend) Describe() string { return b.desc }

// sweep removes the containers and networks of earlier runs whose test
// process is gone (a crashed or killed run); it leaves alone those of runs
// still going on this host.
func (b *dockerBackend) sweep() int {
	host, _ := os.Hostname()
	stale := func(labels map[string]string) bool {
		if labels[labelHost] != host {
			return labels[labelHost] == "" // another host's: not ours to judge
		}
		pid, err := strconv.Atoi(labels[labelPID])
		if err != nil || pid <= 0 {
			return true
		}
		if pid == os.Getpid() {
			return labels[labelRun] != b.runID
		}
		err = syscall.Kill(pid, 0)
		return err != nil && !errors.Is(err, syscall.EPERM)
	}
	n := 0
	cs, err := b.pool.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelRun}}})
	if err == nil {
		for _, c := range cs {
			if stale(c.Labels) {
				if b.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true}) == nil {
					n++
				}
			}
		}
	}
	nws, err := b.pool.Client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelRun: true}})
	if err == nil {
		for _, nw := range nws {
			if stale(nw.Labels) && b.pool.Client.RemoveNetwork(nw.ID) == nil {
				n++
			}
		}
	}
	return n
}

// scriptPath finds scripts/memcached-image.sh from the package directory
// (go test's working directory) or the module root.
func scriptPath() (string, error) {
	for _, p := range []string{"../scripts/memcached-image.sh", "scripts/memcached-image.sh"} {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", errors.New("scripts/memcached-image.sh not found (run the tests from the module)")
}

// buildImage collects the root file system with the script, hashes it, and
// builds the image unless one with that hash exists.
func (b *dockerBackend) buildImage() (built bool, took time.Duration, err error) {
	start := time.Now()
	script, err := scriptPath()
	if err != nil {
		return false, 0, err
	}
	dir, err := os.MkdirTemp("", "libmemcached-go-it-image")
	if err != nil {
		return false, 0, err
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "bash", script, "--rootfs", rootfs).CombinedOutput(); err != nil {
		return false, 0, fmt.Errorf("%s: %v: %s", script, err, out)
	}
	var buf bytes.Buffer
	sum, err := buildContext(&buf, rootfs)
	if err != nil {
		return false, 0, err
	}
	b.image = imageRepo + ":" + sum[:16]
	if _, err := b.pool.Client.InspectImage(b.image); err == nil {
		return false, 0, nil
	}
	var out bytes.Buffer
	err = b.pool.Client.BuildImage(dc.BuildImageOptions{
		Name:                b.image,
		InputStream:         &buf,
		OutputStream:        &out,
		RmTmpContainer:      true,
		ForceRmTmpContainer: true,
		Labels:              map[string]string{labelRun: "image"},
		Version:             "1", // the classic builder: FROM scratch needs nothing else
	})
	if err != nil {
		return false, 0, fmt.Errorf("building %s: %v: %s", b.image, err, out.String())
	}
	// Images built from an older host (another hash) are of no more use;
	// one still used by a container (a concurrent run) stays.
	if imgs, err := b.pool.Client.ListImages(dc.ListImagesOptions{Filters: map[string][]string{"reference": {imageRepo}}}); err == nil {
		for _, img := range imgs {
			for _, tag := range img.RepoTags {
				if strings.HasPrefix(tag, imageRepo+":") && tag != b.image {
					b.pool.Client.RemoveImage(tag)
				}
			}
		}
	}
	return true, time.Since(start), nil
}

// buildContext writes a deterministic tar of the Dockerfile and rootfs/ to w
// and returns the SHA-256 of its content.
func buildContext(w io.Writer, rootfs string) (string, error) {
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(w, h))
	epoch := time.Unix(0, 0)
	add := func(hdr *tar.Header, body []byte) error {
		hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = epoch, 0, 0, "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg}, []byte(dockerfile)); err != nil {
		return "", err
	}
	err := filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rootfs, path)
		name := filepath.ToSlash(filepath.Join("rootfs", rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := int64(info.Mode().Perm())
		if info.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		switch {
		case d.IsDir():
			return add(&tar.Header{Name: name + "/", Mode: mode, Typeflag: tar.TypeDir}, nil)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return add(&tar.Header{Name: name, Mode: mode, Typeflag: tar.TypeSymlink, Linkname: target}, nil)
		default:
			body, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return add(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}, body)
		}
	})
	if err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *dockerBackend) start(name string, o nodeOptions) (node, error) {
	n := &dockerNode{b: b, name: "lmcgo-it-" + b.runID + "-" + name}
	args := append(append([]string{}, baseArgs...), o.args...)
	var saslTar []byte
	hostname := "memcached-node"
	if o.sasl != nil {
		args = append(args, "-S")
		hostname = saslRealmDocker
		dir, err := os.MkdirTemp("", "libmemcached-go-it-sasl")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := makeSASLFiles(dir, saslRealmDocker, "/etc/sasl2/sasldb2", *o.sasl); err != nil {
			return nil, err
		}
		if saslTar, err = tarFiles(dir, "etc/sasl2", "memcached.conf", "sasldb2"); err != nil {
			return nil, err
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n.port = port
		c, err := b.pool.Client.CreateContainer(dc.CreateContainerOptions{
			Name: n.name,
			Config: &dc.Config{
				Image:        b.image,
				Cmd:          args,
				Hostname:     hostname,
				Labels:       b.labels,
				ExposedPorts: map[dc.Port]struct{}{memcPort: {}},
				Env:          []string{"SASL_CONF_PATH=/etc/sasl2"},
			},
			HostConfig: &dc.HostConfig{
				// Published on the loopback interface only, at a port
				// chosen here so that restarts keep it.
				PortBindings:    map[dc.Port][]dc.PortBinding{memcPort: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}},
				PublishAllPorts: false,
				NetworkMode:     b.network.Name,
				// For Partition: iptables inside the container's own
				// network namespace, and nowhere else.
				CapAdd: []string{"NET_ADMIN"},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("creating %s: %v", n.name, err)
		}
		n.id = c.ID
		b.mu.Lock()
		b.nodes[n] = true
		b.mu.Unlock()
		if saslTar != nil {
			if err := b.pool.Client.UploadToContainer(n.id, dc.UploadToContainerOptions{InputStream: bytes.NewReader(saslTar), Path: "/"}); err != nil {
				return n, fmt.Errorf("uploading the SASL files to %s: %v", n.name, err)
			}
		}
		if err := b.pool.Client.StartContainer(n.id, nil); err != nil {
			lastErr = err
			msg := err.Error()
			if strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use") {
				b.remove(n) // the port was taken meanwhile: another one
				continue
			}
			return n, fmt.Errorf("starting %s: %v", n.name, err)
		}
		if err := n.checkLoopbackOnly(); err != nil {
			return n, err
		}
		return n, n.waitReady()
	}
	return nil, fmt.Errorf("starting %s: %v", n.name, lastErr)
}

// tarFiles returns a tar of dir's named files under prefix.
func tarFiles(dir, prefix string, names ...string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: prefix + "/" + name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Now()}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (b *dockerBackend) remove(nd node) error {
	n := nd.(*dockerNode)
	b.mu.Lock()
	delete(b.nodes, n)
	b.mu.Unlock()
	err := b.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: n.id, Force: true, RemoveVolumes: true})
	var noSuch *dc.NoSuchContainer
	if errors.As(err, &noSuch) {
		return nil
	}
	return err
}

func (b *dockerBackend) close() {
	b.mu.Lock()
	nodes := make([]*dockerNode, 0, len(b.nodes))
	for n := range b.nodes {
		nodes = append(nodes, n)
	}
	b.mu.Unlock()
	for _, n := range nodes {
		b.remove(n)
	}
	if b.network != nil {
		if err := b.pool.Client.RemoveNetwork(b.network.ID); err != nil {
			fmt.Fprintf(os.Stderr, "integration_test: removing network %s: %v\n", b.network.Name, err)
		}
	}
}

type dockerNode struct {
	b    *dockerBackend
	name string
	id   string
	port int
}

func (n *dockerNode) Name() string { return n.name }
func (n *dockerNode) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

func (n *dockerNode) state() (*dc.State, error) {
	c, err := n.b.pool.Client.InspectContainer(n.id)
	if err != nil {
		return nil, err
	}
	return &c.State, nil
}

// checkLoopbackOnly verifies that Docker published the node's port on
// 127.0.0.1 and nowhere else.
func (n *dockerNode) checkLoopbackOnly() error {
	c, err := n.b.pool.Client.InspectContainer(n.id)
	if err != nil {
		return err
	}
	if c.NetworkSettings == nil {
		return fmt.Errorf("%s: no network settings", n.name)
	}
	for port, bindings := range c.NetworkSettings.Ports {
		for _, pb := range bindings {
			if pb.HostIP != "127.0.0.1" || pb.HostPort != strconv.Itoa(n.port) {
				return fmt.Errorf("%s: port %s published on %s:%s; want 127.0.0.1:%d only", n.name, port, pb.HostIP, pb.HostPort, n.port)
			}
		}
	}
	return nil
}

func (n *dockerNode) waitReady() error {
	return waitReady(n.Addr(), 15*time.Second, func() error {
		st, err := n.state()
		if err != nil {
			return err
		}
		if !st.Running {
			logs := n.logs()
			return fmt.Errorf("%s exited (code %d): %s", n.name, st.ExitCode, logs)
		}
		return nil
	})
}

func (n *dockerNode) logs() string {
	var out bytes.Buffer
	n.b.pool.Client.Logs(dc.LogsOptions{Container: n.id, OutputStream: &out, ErrorStream: &out, Stdout: true, Stderr: true, Tail: "20"})
	return out.String()
}

func (n *dockerNode) Kill() error {
	st, err := n.state()
	if err != nil {
		return err
	}
	if st.Paused {
		if err := n.b.pool.Client.UnpauseContainer(n.id); err != nil {
			return err
		}
	}
	if !st.Running {
		return nil
	}
	if err := n.b.pool.Client.KillContainer(dc.KillContainerOptions{ID: n.id, Signal: dc.SIGKILL}); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, err := n.state(); err == nil && !st.Running {
			return nil
		}
	}
	return fmt.Errorf("%s still runs 10s after SIGKILL", n.name)
}

func (n *dockerNode) Pause() error {
	if err := n.b.pool.Client.PauseContainer(n.id); err != nil {
		return err
	}
	time.Sleep(50 * time.Millisecond) // as for SIGSTOP; the freezer is synchronous, but be sure
	return nil
}

func (n *dockerNode) Unpause() error { return n.b.pool.Client.UnpauseContainer(n.id) }

func (n *dockerNode) Restart() error {
	if err := n.Kill(); err != nil {
		return err
	}
	if err := n.b.pool.Client.StartContainer(n.id, nil); err != nil {
		return err
	}
	return n.waitReady()
}

func (n *dockerNode) Disconnect() error {
	return n.b.pool.Client.DisconnectNetwork(n.b.network.ID, dc.NetworkConnectionOptions{Container: n.id})
}

func (n *dockerNode) Reconnect() error {
	if err := n.b.pool.Client.ConnectNetwork(n.b.network.ID, dc.NetworkConnectionOptions{Container: n.id}); err != nil {
		return err
	}
	return n.waitReady()
}

// Partition drops all traffic in the container's own network namespace:
// iptables runs inside the container (which has CAP_NET_ADMIN and nothing
// more), through the Docker engine, so the host and the other containers
// are untouched and the test needs no privileges of its own.
func (n *dockerNode) Partition() error { return n.iptables("-I") }

// Heal removes Partition's rules.
func (n *dockerNode) Heal() error { return n.iptables("-D") }

func (n *dockerNode) iptables(op string) error {
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		code, out, err := n.exec("/usr/sbin/iptables", "-w", "5", op, chain, "-j", "DROP")
		if err != nil {
			return fmt.Errorf("iptables %s %s in %s: %v", op, chain, n.name, err)
		}
		if code == 127 || strings.Contains(out, "no such file") {
			// Not a skip: install-deps installs it, and the image then has it.
			return fmt.Errorf("the memcached image has no iptables: run scripts/install-deps.sh (Debian, Ubuntu: apt-get install iptables); output: %s", out)
		}
		if code != 0 {
			return fmt.Errorf("iptables %s %s in %s: exit %d: %s", op, chain, n.name, code, out)
		}
	}
	return nil
}

// exec runs a command inside the container and returns its exit code and
// combined output.
func (n *dockerNode) exec(cmd ...string) (int, string, error) {
	cl := n.b.pool.Client
	ex, err := cl.CreateExec(dc.CreateExecOptions{Container: n.id, Cmd: cmd, AttachStdout: true, AttachStderr: true, User: "root"})
	if err != nil {
		return 0, "", err
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.StartExec(ex.ID, dc.StartExecOptions{OutputStream: &out, ErrorStream: &out, Context: ctx}); err != nil {
		return 0, out.String(), err
	}
	st, err := cl.InspectExec(ex.ID)
	if err != nil {
		return 0, out.String(), err
	}
	return st.ExitCode, strings.TrimSpace(out.String()), nil
}
