package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	alisim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// newCloudsimCmd is `cloudmha cloudsim`: the local Alibaba Cloud emulator
// wired to a running sandbox, to try the cloud movers by hand.
func newCloudsimCmd(g *globals) *cobra.Command {
	var (
		prefix, mover, listen string
	)
	cmd := &cobra.Command{
		Use:     "cloudsim [--prefix=cmha] [--mover=aliyun-havip|aliyun-eni]",
		GroupID: "sandbox",
		Short:   "Run the local Alibaba Cloud emulator for the sandbox (try the cloud movers)",
		Long: `Serve the local Alibaba Cloud emulator (ECS, VPC, Alidns; signatures checked,
asynchronous states) inside the sandbox's manager namespace, and make the
sandbox's bridge behave like a VPC: the VIP reaches a host only while the
emulator's state puts it there (a HaVip's master, or the instance an ENI is
attached to). A mover that only runs "ip addr add" gets nothing.

It registers an instance per sandbox host and a HaVip (--mover=aliyun-havip)
or an ENI (--mover=aliyun-eni) for the VIP, writes a cloudmha YAML
configuration for that mover and a credentials file for the manager, prints
how to run the manager, and serves until interrupted (Ctrl-C turns the VPC
data plane off again). Needs a sandbox ("cloudmha sandbox up") and root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCloudsim(cmd.Context(), g, prefix, mover, listen)
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "cmha", "name prefix of the sandbox")
	cmd.Flags().StringVar(&mover, "mover", "aliyun-havip", "what to set up for the VIP: aliyun-havip or aliyun-eni")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:18080", "address of the emulator inside the manager namespace")
	return cmd
}

func runCloudsim(ctx context.Context, g *globals, prefix, mover, listen string) error {
	if mover != "aliyun-havip" && mover != "aliyun-eni" {
		return fmt.Errorf("cloudsim: --mover=%s: want aliyun-havip or aliyun-eni", mover)
	}
	dir := filepath.Join(testbed.BaseDir, prefix)
	b, err := testbed.Load(dir)
	if err != nil {
		return fmt.Errorf("cloudsim: %w (bring a sandbox up first: cloudmha sandbox up --prefix=%s)", err, prefix)
	}
	b.SetLogger(g.logger())
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("cloudsim: generate the emulator's credential: %w", err)
	}
	ak, secret := "LTAI-sandbox-"+prefix, hex.EncodeToString(raw[:])
	sim := alisim.New(alisim.Options{Credentials: map[string]string{ak: secret}, MaxHaVipInstances: len(b.Hosts), Logger: g.logger()})
	l, err := b.Listen(b.ManagerNS, listen)
	if err != nil {
		return fmt.Errorf("cloudsim: listen on %s in %s: %w", listen, b.ManagerNS, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	plane, err := b.NewAliyunPlane(ctx, sim)
	if err != nil {
		return fmt.Errorf("cloudsim: %w", err)
	}
	defer plane.Close()
	var options string
	switch mover {
	case "aliyun-havip":
		if err := plane.HaVip(ctx, "havip-"+prefix); err != nil {
			return fmt.Errorf("cloudsim: %w", err)
		}
		options = fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", havip_id: havip-%s, interface: eth0, prefix: "24"}`, l.Addr(), prefix)
	case "aliyun-eni":
		if _, err := plane.ENI(ctx, "eni-"+prefix, 0); err != nil {
			return fmt.Errorf("cloudsim: %w", err)
		}
		options = fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", eni_id: eni-%s}`, l.Addr(), prefix)
	}
	conf := filepath.Join(dir, "app1-"+mover+".yaml")
	workdir := filepath.Join(dir, "mgr-"+mover)
	if err := b.WriteYAMLConfig(conf, workdir, mover, options); err != nil {
		return fmt.Errorf("cloudsim: %w", err)
	}
	envFile := filepath.Join(dir, "cloudsim.env")
	env := fmt.Sprintf("ALIBABA_CLOUD_ACCESS_KEY_ID=%s\nALIBABA_CLOUD_ACCESS_KEY_SECRET=%s\n", ak, secret)
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		return fmt.Errorf("cloudsim: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		self = "cloudmha"
	}
	fmt.Fprintf(g.stdout, `Alibaba Cloud emulator for sandbox %[1]q serving on %[2]s in %[3]s (%[4]s for the VIP %[5]s).
The sandbox's bridge now behaves like a VPC. In another terminal:

  set -a; . %[6]s; set +a     # the emulator's credentials (the official chain reads them)
  ip netns exec %[3]s %[7]s manager --conf=%[8]s --log-level=info
  %[7]s sandbox status --prefix=%[1]s     # then kill the primary: kill -KILL $(cat %[9]s)

Ctrl-C stops the emulator and turns the VPC data plane off.
`, prefix, l.Addr(), b.ManagerNS, mover, b.VIP, envFile, self, conf, filepath.Join(b.Hosts[0].Dir, "mariadbd.pid"))
	<-ctx.Done()
	fmt.Fprintf(g.stdout, "cloudsim: stopping (data plane: %v)\n", plane.Moves())
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
