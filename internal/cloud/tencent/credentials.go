package tencent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
)

// Credential chain settings.
const (
	// EnvSessionToken is the environment variable of a temporary key's
	// token (the SDK's EnvProvider reads only the id and the key).
	EnvSessionToken = "TENCENTCLOUD_SESSION_TOKEN"
	// DefaultMetadataEndpoint is the CVM instance metadata base URL.
	DefaultMetadataEndpoint = "http://metadata.tencentyun.com/latest/meta-data/"
	// DefaultMetadataTimeout bounds one instance metadata request.
	DefaultMetadataTimeout = 2 * time.Second
	// refreshBefore is how long before expiry temporary keys are renewed
	// (the SDK's ExpiredTimeout).
	refreshBefore = 5 * time.Minute
)

// Credential sources, as logged.
const (
	SourceCaller  = "caller"
	SourceEnv     = "environment"
	SourceProfile = "profile file"
	SourceCVMRole = "CVM role"
)

// envProvider is the SDK's EnvProvider plus TENCENTCLOUD_SESSION_TOKEN.
type envProvider struct{}

// GetCredential implements common.Provider. When the variables are not
// set it returns the SDK provider's own error, which the chain skips.
func (envProvider) GetCredential() (common.CredentialIface, error) {
	cred, err := common.DefaultEnvProvider().GetCredential()
	if err != nil {
		return nil, err
	}
	if tok := os.Getenv(EnvSessionToken); tok != "" {
		return common.NewTokenCredential(cred.GetSecretId(), cred.GetSecretKey(), tok), nil
	}
	return cred, nil
}

// named records which provider of the chain answered.
type named struct {
	p      common.Provider
	name   string
	answer *string
}

// GetCredential implements common.Provider; errors pass unchanged so that
// the chain still recognises the SDK's "not configured" errors.
func (n named) GetCredential() (common.CredentialIface, error) {
	c, err := n.p.GetCredential()
	if err == nil {
		*n.answer = n.name
	}
	return c, err
}

// cvmRoleProvider gets temporary keys of the CAM role bound to the CVM
// from instance metadata.
type cvmRoleProvider struct {
	base string // ends with "/"
	hc   *http.Client
}

func newCVMRoleProvider(base string) *cvmRoleProvider {
	if base == "" {
		base = DefaultMetadataEndpoint
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: DefaultMetadataTimeout}).DialContext}
	return &cvmRoleProvider{base: base, hc: &http.Client{Transport: tr, Timeout: DefaultMetadataTimeout}}
}

// GetCredential implements common.Provider.
func (p *cvmRoleProvider) GetCredential() (common.CredentialIface, error) {
	rc := &roleCredential{p: p}
	if err := rc.refresh(); err != nil {
		return nil, err
	}
	return rc, nil
}

func (p *cvmRoleProvider) get(path string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultMetadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return b, resp.StatusCode, err
}

// fetch returns the role's current temporary keys.
func (p *cvmRoleProvider) fetch() (role string, r roleKeys, err error) {
	b, st, err := p.get("cam/security-credentials/")
	switch {
	case err != nil:
		return "", r, fmt.Errorf("CVM role: instance metadata unreachable (not a CVM?): %w", err)
	case st == http.StatusNotFound:
		return "", r, errors.New("CVM role: no CAM role is bound to this CVM")
	case st != http.StatusOK:
		return "", r, fmt.Errorf("CVM role: instance metadata answered HTTP %d to the role query", st)
	}
	role = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if role == "" || strings.ContainsAny(role, "/?# ") {
		return "", r, errors.New("CVM role: instance metadata returned no usable role name")
	}
	b, st, err = p.get("cam/security-credentials/" + role)
	if err != nil {
		return role, r, fmt.Errorf("CVM role %s: temporary keys not available: %w", role, err)
	}
	if st != http.StatusOK {
		return role, r, fmt.Errorf("CVM role %s: temporary keys not available (HTTP %d)", role, st)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return role, r, fmt.Errorf("CVM role %s: temporary keys are not JSON: %w", role, err)
	}
	if r.Code != "Success" || r.TmpSecretID == "" || r.TmpSecretKey == "" {
		return role, roleKeys{}, fmt.Errorf("CVM role %s: instance metadata answered code %q", role, r.Code)
	}
	return role, r, nil
}

type roleKeys struct {
	TmpSecretID  string `json:"TmpSecretId"`
	TmpSecretKey string `json:"TmpSecretKey"`
	Token        string `json:"Token"`
	ExpiredTime  int64  `json:"ExpiredTime"`
	Code         string `json:"Code"`
}

// roleCredential is a CAM role's temporary key, renewed before it
// expires. It implements common.CredentialIface.
type roleCredential struct {
	p    *cvmRoleProvider
	mu   sync.Mutex
	role string
	keys roleKeys
	err  error // last renewal failure
}

func (c *roleCredential) refresh() error {
	role, k, err := c.p.fetch()
	if err != nil {
		return err
	}
	c.role, c.keys = role, k
	return nil
}

// current renews the keys when they expire within five minutes (keeping
// the old ones when that fails); c.mu must be held.
func (c *roleCredential) current() {
	if c.keys.TmpSecretID != "" && time.Until(time.Unix(c.keys.ExpiredTime, 0)) > refreshBefore {
		return
	}
	c.err = c.refresh()
}

// valid reports a renewal failure once the keys have expired.
func (c *roleCredential) valid() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current()
	if c.err != nil && !time.Now().Before(time.Unix(c.keys.ExpiredTime, 0)) {
		return fmt.Errorf("the CVM role's temporary keys expired and could not be renewed: %w", c.err)
	}
	return nil
}

// GetCredential implements common.CredentialIface.
func (c *roleCredential) GetCredential() (string, string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current()
	return c.keys.TmpSecretID, c.keys.TmpSecretKey, c.keys.Token
}

// GetSecretId implements common.CredentialIface.
func (c *roleCredential) GetSecretId() string { id, _, _ := c.GetCredential(); return id }

// GetSecretKey implements common.CredentialIface.
func (c *roleCredential) GetSecretKey() string { _, k, _ := c.GetCredential(); return k }

// GetToken implements common.CredentialIface.
func (c *roleCredential) GetToken() string { _, _, t := c.GetCredential(); return t }

// lazyCredential resolves a provider chain on first use and caches what
// it found. It implements common.CredentialIface; when the chain fails it
// returns empty strings (the API then refuses the call), and resolve
// reports why.
type lazyCredential struct {
	mu     sync.Mutex
	chain  common.Provider
	cred   common.CredentialIface
	source string
	answer string // written by the named providers during GetCredential
	logged bool
}

// firstUse is true once, for the first successful resolution's log line.
func (l *lazyCredential) firstUse() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logged || l.cred == nil {
		return false
	}
	l.logged = true
	return true
}

func (l *lazyCredential) resolve() (common.CredentialIface, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cred == nil {
		c, err := l.chain.GetCredential()
		if err != nil {
			return nil, "", err
		}
		l.cred, l.source = c, l.answer
	}
	if v, ok := l.cred.(interface{ valid() error }); ok {
		if err := v.valid(); err != nil {
			return nil, l.source, err
		}
	}
	return l.cred, l.source, nil
}

// GetCredential implements common.CredentialIface.
func (l *lazyCredential) GetCredential() (string, string, string) {
	c, _, err := l.resolve()
	if err != nil {
		return "", "", ""
	}
	return c.GetCredential()
}

// GetSecretId implements common.CredentialIface.
func (l *lazyCredential) GetSecretId() string { id, _, _ := l.GetCredential(); return id }

// GetSecretKey implements common.CredentialIface.
func (l *lazyCredential) GetSecretKey() string { _, k, _ := l.GetCredential(); return k }

// GetToken implements common.CredentialIface.
func (l *lazyCredential) GetToken() string { _, _, t := l.GetCredential(); return t }

// newChain builds the default chain (environment, profile file, CVM role
// unless disabled).
func newChain(noMetadata bool, metadata string) *lazyCredential {
	l := &lazyCredential{}
	ps := []common.Provider{
		named{envProvider{}, SourceEnv, &l.answer},
		named{common.DefaultProfileProvider(), SourceProfile, &l.answer},
	}
	if !noMetadata {
		ps = append(ps, named{newCVMRoleProvider(metadata), SourceCVMRole, &l.answer})
	}
	l.chain = common.NewProviderChain(ps)
	return l
}
