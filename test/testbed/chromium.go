package testbed

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"github.com/cloudmha/cloudmha/internal/api/headless"
)

// Chromium is headless Chromium run inside one of the bed's namespaces
// (`ip netns exec NS chromium --headless …`), so that an end-to-end test can
// load the status page of a manager running on the bed, e.g.
// http://198.18.0.201:8080/#token=…, as a browser on that network would.
// The flags are those of the api package's own page test (headless.Args).
type Chromium struct {
	NS      string
	browser *headless.Browser
	subnet  netip.Prefix
}

// Chromium returns a browser that runs in namespace ns (one of the bed's,
// usually ClientNS) with dir as its scratch directory (HOME, profiles).
// When no Chromium is installed the error wraps headless.ErrNotFound:
//
//	br, err := bed.Chromium(bed.ClientNS, t.TempDir())
//	if errors.Is(err, headless.ErrNotFound) { t.Skip(err) }
func (b *Bed) Chromium(ns, dir string) (*Chromium, error) {
	if !slices.Contains(b.Namespaces(), ns) {
		return nil, fmt.Errorf("testbed: chromium: %q is not a namespace of this bed", ns)
	}
	ip, err := lookPath("ip")
	if err != nil {
		return nil, err
	}
	br, err := headless.New(dir)
	if err != nil {
		return nil, fmt.Errorf("testbed: chromium: %w", err)
	}
	br.Prefix = []string{ip, "netns", "exec", ns}
	return &Chromium{NS: ns, browser: br, subnet: b.subnet}, nil
}

// SetBudget changes the virtual time the page gets before the DOM is dumped
// or the screenshot taken (default headless.DefaultBudget, 5 s).
func (c *Chromium) SetBudget(d time.Duration) { c.browser.Budget = d }

// DumpDOM loads rawURL (an http(s) URL whose host is an address of the bed's
// subnet or loopback) and returns the DOM after the page's scripts ran.
func (c *Chromium) DumpDOM(ctx context.Context, rawURL string) (string, error) {
	if err := c.check(rawURL); err != nil {
		return "", err
	}
	return c.browser.DumpDOM(ctx, rawURL)
}

// Screenshot loads rawURL in a width×height window and writes a PNG to path.
func (c *Chromium) Screenshot(ctx context.Context, rawURL, path string, width, height int) error {
	if err := c.check(rawURL); err != nil {
		return err
	}
	return c.browser.Screenshot(ctx, rawURL, path, width, height)
}

// check keeps the browser on the bed: http(s) to an IP literal of the
// subnet or loopback only. Errors never repeat the URL's fragment (token).
func (c *Chromium) check(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("testbed: chromium: %s: want an http(s) URL", headless.Redact(rawURL))
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if err := allowedTarget(c.subnet, net.JoinHostPort(u.Hostname(), port)); err != nil {
		return fmt.Errorf("testbed: chromium: %s: %w", headless.Redact(rawURL), err)
	}
	return nil
}
