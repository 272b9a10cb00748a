// Package deploy_test checks the deployment files in deploy/ with what can
// run here: the Dockerfile's own build line must give a static binary that
// works as an `envy run` entrypoint, the systemd unit must pass
// systemd-analyze verify (where installed) and keep its hardening, and the
// Kubernetes example must parse and hold the fields that matter. Every
// flag and ENVY_* variable the files use must be one `envy server` has.
package deploy_test

import (
	"bufio"
	"crypto/rand"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// envyBinary builds envy once, with the Dockerfile's own `go build` line
// (so the binary the tests run is the one the image would hold), and
// returns its path.
func envyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		var line string
		for _, in := range readDockerfile(t) {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				line = in.args
			}
		}
		dir, err := os.MkdirTemp("", "envy-deploy-test-")
		if err != nil || line == "" {
			buildErr = fmt.Errorf("no go build line in the Dockerfile, or no temp dir: %v", err)
			return
		}
		binPath = filepath.Join(dir, "envy")
		line = strings.ReplaceAll(line, "/out/", dir+"/")
		c := exec.Command("sh", "-c", line)
		c.Dir = ".."
		if out, err := c.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", line, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && buildErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// serverFlags returns the flags `envy server --help` lists.
func serverFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(envyBinary(t), "server", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("envy server --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z][a-z-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["listen"] || !flags["data-dir"] {
		t.Fatalf("could not read the flags from envy server --help:\n%s", out)
	}
	return flags
}

// checkServerArgs checks that args are `server` and flags it has.
func checkServerArgs(t *testing.T, where string, args []string) {
	t.Helper()
	flags := serverFlags(t)
	if len(args) == 0 || args[0] != "server" {
		t.Fatalf("%s: %q does not start envy server", where, args)
	}
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !flags[name] {
				t.Errorf("%s: envy server has no flag --%s", where, name)
			}
		}
	}
}

// checkEnvName checks that an ENVY_* variable is one envy server reads.
func checkEnvName(t *testing.T, where, name string) {
	t.Helper()
	if name == "ENVY_BOOTSTRAP_TOKEN" {
		return
	}
	flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "ENVY_")), "_", "-")
	if !strings.HasPrefix(name, "ENVY_") || !serverFlags(t)[flag] {
		t.Errorf("%s: %s is not a variable envy server reads", where, name)
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur += more
			continue
		}
		cur += line
		if f := strings.Fields(cur); len(f) > 0 {
			out = append(out, instruction{strings.ToUpper(f[0]), strings.TrimSpace(strings.TrimPrefix(cur, f[0]))})
		}
		cur = ""
	}
	return out
}

// execForm reads an exec-form (JSON array) argument.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("%s %s: not in exec form (a JSON array): %v", in.cmd, in.args, err)
	}
	return v
}

func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t)
	lastFrom := -1
	var build instruction
	for i, in := range ins {
		switch {
		case in.cmd == "FROM":
			lastFrom = i
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			build = in
		}
	}
	if build.cmd == "" || lastFrom < 0 {
		t.Fatal("the Dockerfile has no go build line or no FROM")
	}
	if !strings.Contains(build.args, "CGO_ENABLED=0") {
		t.Errorf("the build line does not set CGO_ENABLED=0: %s", build.args)
	}
	final := ins[lastFrom:]
	if strings.Contains(final[0].args, "golang") {
		t.Errorf("the final stage is the Go toolchain image: %s", final[0].args)
	}
	var user, entry, cmd *instruction
	copied := false
	for i := range final {
		switch in := &final[i]; in.cmd {
		case "USER":
			user = in
		case "ENTRYPOINT":
			entry = in
		case "CMD":
			cmd = in
		case "COPY":
			copied = copied || strings.Contains(in.args, "/out/envy /envy")
		}
	}
	if user == nil {
		t.Error("the final stage has no USER: it would run as root")
	} else if u, _, _ := strings.Cut(user.args, ":"); u == "root" || u == "0" {
		t.Errorf("USER %s is root", user.args)
	}
	if !copied {
		t.Error("the final stage does not copy the built binary to /envy")
	}
	// The binary alone is the entrypoint, so that any envy command, `envy
	// run` included, is the container's command.
	if entry == nil || !slices.Equal(execForm(t, *entry), []string{"/envy"}) {
		t.Errorf("ENTRYPOINT must be [\"/envy\"], is %v", entry)
	}
	if cmd == nil {
		t.Fatal("no CMD")
	}
	args := execForm(t, *cmd)
	checkServerArgs(t, "Dockerfile CMD", args)
	if i := slices.Index(args, "--listen"); i < 0 || i+1 >= len(args) || strings.HasPrefix(args[i+1], "127.") {
		t.Errorf("CMD %q must listen beyond the container's loopback", args)
	}

	t.Run("static binary", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the image is linux; this checks an ELF binary")
		}
		bin := envyBinary(t)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("the binary is dynamically linked (program header %v)", p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("the binary needs shared libraries: %v", libs)
		}
	})
	t.Run("envy run as an entrypoint", func(t *testing.T) {
		checkRunEntrypoint(t, envyBinary(t))
	})
}

// checkRunEntrypoint runs bin as the Dockerfile's comment shows `envy run`
// used as an image's entrypoint: with ENVY_ADDR and ENVY_TOKEN only, and
// the program's exit status passed through.
func checkRunEntrypoint(t *testing.T, bin string) {
	e := testenv.New(t, testenv.Options{})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web/prod/-/vars/GREETING", e.Admin, `{"value":"hello from envy"}`); r.Status != 201 {
		t.Fatalf("seed write: %d %s", r.Status, r.Body)
	}
	c := exec.Command(bin, "run", "--scope", "acme/web/prod", "--", "sh", "-c", `echo "$GREETING"; exit 7`)
	c.Env = []string{"ENVY_ADDR=" + e.URL, "ENVY_TOKEN=" + e.Admin, "PATH=" + os.Getenv("PATH")}
	out, err := c.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("envy run: %v, want exit status 7\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "hello from envy" {
		t.Fatalf("envy run printed %q", out)
	}
}

// readUnit reads a systemd unit as section -> key -> values.
func readUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", path, line)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	return unit
}

func TestSystemdUnit(t *testing.T) {
	const path = "systemd/envy.service"
	svc := readUnit(t, path)["Service"]
	want := map[string]string{
		"DynamicUser":             "yes",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"UMask":                   "0077",
		"StateDirectory":          "envy",
		"KillSignal":              "SIGTERM",
	}
	for k, v := range want {
		if got := svc[k]; len(got) == 0 || got[len(got)-1] != v {
			t.Errorf("%s: %s=%q, want %q", path, k, got, v)
		}
	}
	exec0 := strings.Fields(svc["ExecStart"][0])
	if exec0[0] != "/usr/local/bin/envy" {
		t.Errorf("ExecStart runs %s", exec0[0])
	}
	checkServerArgs(t, path+" ExecStart", exec0[1:])
	if i := slices.Index(exec0, "--data-dir"); i < 0 || exec0[i+1] != "/var/lib/envy" {
		t.Errorf("ExecStart %q must keep its data in the StateDirectory /var/lib/envy", exec0)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: checked the unit's keys only")
	}
	// verify checks that ExecStart's binary exists: point it at a built one.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "envy.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/envy", envyBinary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	// verify exits 0 on warnings such as an unknown key: any output is a finding.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
}

// k8s is the part of a Kubernetes object the test reads.
type k8s struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int             `yaml:"replicas"`
		Selector yaml.Node        `yaml:"selector"`
		Ports    []k8sServicePort `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sServicePort struct {
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type k8sContainer struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	LivenessProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
		} `yaml:"httpGet"`
	} `yaml:"livenessProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

const k8sPath = "kubernetes/envy.yaml"

// readK8s reads the Kubernetes example's objects by kind.
func readK8s(t *testing.T) map[string]k8s {
	t.Helper()
	f, err := os.Open(k8sPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs := map[string]k8s{}
	dec := yaml.NewDecoder(f)
	for {
		var o k8s
		if err := dec.Decode(&o); err != nil {
			if err == io.EOF {
				return objs
			}
			t.Fatalf("%s: %v", k8sPath, err)
		}
		objs[o.Kind] = o
	}
}

func TestKubernetesExample(t *testing.T) {
	const path = k8sPath
	objs := readK8s(t)
	d, ok := objs["Deployment"]
	if !ok {
		t.Fatalf("%s has no Deployment", path)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	if p := d.Spec.Template.Spec.SecurityContext.RunAsNonRoot; p == nil || !*p {
		t.Error("the pod does not set runAsNonRoot: true")
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	checkServerArgs(t, path+" args", c.Args)
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation ||
		c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the container must set allowPrivilegeEscalation: false and readOnlyRootFilesystem: true")
	}

	// Readiness on /readyz, liveness on /healthz, on the port envy listens on.
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readinessProbe path %q, want /readyz", c.ReadinessProbe.HTTPGet.Path)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("livenessProbe path %q, want /healthz", c.LivenessProbe.HTTPGet.Path)
	}
	port := 0
	for _, p := range c.Ports {
		if p.Name == c.ReadinessProbe.HTTPGet.Port {
			port = p.ContainerPort
		}
	}
	i := slices.Index(c.Args, "--listen")
	if port == 0 || i < 0 || !strings.HasSuffix(c.Args[i+1], ":"+strconv.Itoa(port)) || strings.HasPrefix(c.Args[i+1], "127.") {
		t.Errorf("the probe's port %q (%d) is not where --listen %v serves", c.ReadinessProbe.HTTPGet.Port, port, c.Args)
	}

	// PostgreSQL and the master key come from a Secret (a KMS URL, or a
	// base64key:// URL for a key kept in the Secret itself).
	fromSecret := map[string]bool{}
	for _, e := range c.Env {
		checkEnvName(t, path, e.Name)
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			fromSecret[e.Name] = true
		}
	}
	for _, name := range []string{"ENVY_DATABASE_URL", "ENVY_MASTER_KEY_URL"} {
		if !fromSecret[name] {
			t.Errorf("%s does not come from a Secret", name)
		}
	}

	s, ok := objs["Service"]
	if !ok {
		t.Fatalf("%s has no Service", path)
	}
	var sel map[string]string
	if err := d.Spec.Selector.Decode(&struct {
		MatchLabels *map[string]string `yaml:"matchLabels"`
	}{&sel}); err != nil {
		t.Fatal(err)
	}
	for k, v := range sel {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the Deployment's selector %s=%s does not match its pods", k, v)
		}
	}
	var svcSel map[string]string
	if err := s.Spec.Selector.Decode(&svcSel); err != nil || len(svcSel) == 0 {
		t.Fatalf("the Service has no selector: %v", err)
	}
	for k, v := range svcSel {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the Service's selector %s=%s does not match the Deployment's pods", k, v)
		}
	}
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort != c.ReadinessProbe.HTTPGet.Port {
		t.Errorf("the Service does not send to the container's port %q: %+v", c.ReadinessProbe.HTTPGet.Port, s.Spec.Ports)
	}
}

// startServer runs the built binary as `envy server` on a free loopback
// port with a fresh data dir, and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	return startEnvy(t, []string{"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, nil)
}

// startEnvy runs the built binary with args and the extra environment
// env, waits until it says it is ready, and returns its URL.
func startEnvy(t *testing.T, args, env []string) string {
	t.Helper()
	cmd := exec.Command(envyBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		pw.Close()
	})
	ready := make(chan string, 1)
	var mu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(pr)
		// The ready line in text or JSON logs: url=http://… or "url":"http://…".
		re := regexp.MustCompile(`envy is ready.*\burl"?[=:]"?(http://[^\s"]+)`)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	select {
	case u := <-ready:
		return u
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("envy %q did not say it was ready; it said:\n%s", args, strings.Join(lines, "\n"))
		return ""
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPrometheusAlerts(t *testing.T) {
	const path = "prometheus/alerts.yaml"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}

	// What the server serves: the families in a scrape (after a request
	// to the env route, so that its label exists), and the envy_ metrics
	// declared in http/metrics.go (a counter shows up only once counted).
	base := startServer(t)
	get(t, base+"/v1/scopes/acme/web/-/env")
	scrape := get(t, base+"/metrics")
	served := map[string]bool{"up": true}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+)`).FindAllStringSubmatch(scrape, -1) {
		served[m[1]] = true
	}
	src, err := os.ReadFile("../http/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`Name:\s*"(envy_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		served[m[1]] = true
	}

	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: rule %q needs alert, expr, labels.severity and annotations.summary", path, r.Alert)
			}
			for _, m := range regexp.MustCompile(`\b((?:envy|process|go)_[a-z_]+|up)\b`).FindAllString(r.Expr, -1) {
				family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !served[m] && !served[family] {
					t.Errorf("%s: %s uses %s, which envy server does not serve", path, r.Alert, m)
				}
			}
			for _, m := range regexp.MustCompile(`route="([^"]+)"`).FindAllStringSubmatch(r.Expr, -1) {
				if !strings.Contains(scrape, `route="`+m[1]+`"`) {
					t.Errorf("%s: %s selects route %q, which is not a route label envy uses", path, r.Alert, m[1])
				}
			}
		}
	}
	if n == 0 {
		t.Fatalf("%s holds no rules", path)
	}
}

// TestKubernetesPodsShareOnePostgreSQL starts the Deployment's replicas as
// the example configures them (its args and env, the Secret's three keys
// filled in: a fresh database, a base64key:// master key and a bootstrap
// token), all at once on one PostgreSQL database, and checks that each is
// ready and that a write through one reads back through the other.
func TestKubernetesPodsShareOnePostgreSQL(t *testing.T) {
	d := readK8s(t)["Deployment"]
	c := d.Spec.Template.Spec.Containers[0]
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	token := envy.NewTokenValue()
	secret := map[string]string{
		"database-url":    pgtest.NewDatabase(t),
		"master-key-url":  "base64key://" + base64.URLEncoding.EncodeToString(key),
		"bootstrap-token": token,
	}
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			var ok bool
			if v, ok = secret[e.ValueFrom.SecretKeyRef.Key]; !ok {
				t.Fatalf("%s: %s comes from the Secret's key %q, which the example's kubectl command does not create", k8sPath, e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	// Each pod has its own address; here they share a host.
	args := slices.Clone(c.Args)
	i := slices.Index(args, "--listen")
	args[i+1] = "127.0.0.1:0"

	n := *d.Spec.Replicas
	urls := make([]string, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			urls[r] = startEnvy(t, args, env)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, u := range urls {
		if res, err := http.Get(u + c.ReadinessProbe.HTTPGet.Path); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s%s: %v %v", u, c.ReadinessProbe.HTTPGet.Path, res, err)
		}
	}
	req, _ := http.NewRequest("PUT", urls[0]+"/v1/scopes/acme/web/prod/-/vars/GREETING", strings.NewReader(`{"value":"hello from pod 0"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("write through pod 0: %v %v", res, err)
	}
	res.Body.Close()
	req, _ = http.NewRequest("GET", urls[n-1]+"/v1/scopes/acme/web/prod/-/env", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct {
		Env map[string]string `json:"env"`
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != 200 || got.Env["GREETING"] != "hello from pod 0" {
		t.Fatalf("read through pod %d: %d %v %v", n-1, res.StatusCode, got, err)
	}
}
