// A minimal CNI runtime built on the reference runtime library (libcni, Debian's
// golang-github-appc-cni-dev 1.1.2), so the libcni test stage can drive bridge + the IPAM plugin
// under test exactly as containerd/CRI-O/podman do: version negotiation, result cache, prevResult.
//
// Build (offline, GOPATH mode):
//
//	GO111MODULE=off GOPATH=<tmp>:/usr/share/gocode CGO_ENABLED=0 go build -o client ./test/libcni/client
//
// It reads one JSON request on stdin and writes one JSON reply on stdout; it exits 0 even when the
// operation failed (the reply says so), and non-zero only when the request itself is unusable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

type request struct {
	// add, check, del, validate, version, cachedResult
	Op string `json:"op"`
	// "list" (a .conflist, the *NetworkList calls) or "net" (a .conf, the single-network calls)
	Mode           string                 `json:"mode"`
	Conf           string                 `json:"conf"`
	Path           []string               `json:"path"`
	CacheDir       string                 `json:"cacheDir"`
	ContainerID    string                 `json:"containerID"`
	NetNS          string                 `json:"netns"`
	IfName         string                 `json:"ifname"`
	Args           [][2]string            `json:"args"`
	CapabilityArgs map[string]interface{} `json:"capabilityArgs"`
	// for op=version: the plugin type to ask
	PluginType string `json:"pluginType"`
}

type cniError struct {
	Code    uint   `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details,omitempty"`
}

type reply struct {
	OK bool `json:"ok"`
	// the full error text as libcni reports it (with its own wrapping)
	Error string `json:"error,omitempty"`
	// the plugin's CNI error, when the failure came from a plugin
	CNIError *cniError `json:"cniError,omitempty"`
	// the result as libcni returns it to the runtime (converted to the config's version)
	Result json.RawMessage `json:"result,omitempty"`
	// for op=version
	SupportedVersions []string `json:"supportedVersions,omitempty"`
	// for op=validate
	Capabilities []string `json:"capabilities,omitempty"`
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fatal(err)
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		fatal(fmt.Errorf("bad request: %w", err))
	}
	out, err := json.Marshal(run(req))
	if err != nil {
		fatal(err)
	}
	os.Stdout.Write(append(out, '\n'))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "libcni-client:", err)
	os.Exit(2)
}

func run(req request) reply {
	ctx := context.Background()
	cni := libcni.NewCNIConfigWithCacheDir(req.Path, req.CacheDir, nil)
	rt := &libcni.RuntimeConf{
		ContainerID:    req.ContainerID,
		NetNS:          req.NetNS,
		IfName:         req.IfName,
		Args:           req.Args,
		CapabilityArgs: req.CapabilityArgs,
	}

	if req.Op == "version" {
		info, err := cni.GetVersionInfo(ctx, req.PluginType)
		if err != nil {
			return failure(err)
		}
		return reply{OK: true, SupportedVersions: info.SupportedVersions()}
	}

	var (
		result types.Result
		caps   []string
		err    error
	)
	switch req.Mode {
	case "list":
		list, lerr := libcni.ConfListFromFile(req.Conf)
		if lerr != nil {
			return failure(lerr)
		}
		switch req.Op {
		case "add":
			result, err = cni.AddNetworkList(ctx, list, rt)
		case "check":
			err = cni.CheckNetworkList(ctx, list, rt)
		case "del":
			err = cni.DelNetworkList(ctx, list, rt)
		case "validate":
			caps, err = cni.ValidateNetworkList(ctx, list)
		case "cachedResult":
			result, err = cni.GetNetworkListCachedResult(list, rt)
		default:
			fatal(fmt.Errorf("unknown op %q", req.Op))
		}
	case "net":
		net, nerr := libcni.ConfFromFile(req.Conf)
		if nerr != nil {
			return failure(nerr)
		}
		switch req.Op {
		case "add":
			result, err = cni.AddNetwork(ctx, net, rt)
		case "check":
			err = cni.CheckNetwork(ctx, net, rt)
		case "del":
			err = cni.DelNetwork(ctx, net, rt)
		case "validate":
			caps, err = cni.ValidateNetwork(ctx, net)
		case "cachedResult":
			result, err = cni.GetNetworkCachedResult(net, rt)
		default:
			fatal(fmt.Errorf("unknown op %q", req.Op))
		}
	default:
		fatal(fmt.Errorf("unknown mode %q", req.Mode))
	}
	if err != nil {
		return failure(err)
	}
	r := reply{OK: true, Capabilities: caps}
	if result != nil {
		b, merr := json.Marshal(result)
		if merr != nil {
			return failure(merr)
		}
		r.Result = b
	} else if req.Op == "cachedResult" {
		r.Result = json.RawMessage("null")
	}
	return r
}

func failure(err error) reply {
	r := reply{OK: false, Error: err.Error()}
	var ce *types.Error
	if errors.As(err, &ce) {
		r.CNIError = &cniError{Code: ce.Code, Msg: ce.Msg, Details: ce.Details}
	}
	return r
}
