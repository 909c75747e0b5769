package registry

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), which oras-go counts as internal.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// metadataPrefixes are cloud instance metadata services and other addresses that no token request is
// ever sent to, even to a realm the user named: a token or credentials from there must not reach a
// registry.
var metadataPrefixes = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // IPv4 link-local: AWS, GCP, Azure, OCI, OpenStack... at 169.254.169.254, ECS at 169.254.170.2
	netip.MustParsePrefix("fe80::/10"),          // IPv6 link-local
	netip.MustParsePrefix("fd00:ec2::/32"),      // AWS IMDS and EKS Pod Identity over IPv6 (fd00:ec2::254, fd00:ec2::23)
	netip.MustParsePrefix("fd20:ce::254/128"),   // Google Cloud metadata over IPv6
	netip.MustParsePrefix("fd00:c1::/32"),       // Oracle Cloud metadata over IPv6 (fd00:c1::a9fe:a9fe)
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("192.0.0.192/32"),     // Oracle Cloud (classic) metadata
	netip.MustParsePrefix("168.63.129.16/32"),   // Azure WireServer
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network": 0.0.0.0 reaches the local host
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
}

// v4Embedding are IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64), or in bits
// 16 to 47 (6to4): 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64 gateway.
var (
	nat64Prefixes = []netip.Prefix{netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("64:ff9b:1::/48")}
	sixToFour     = netip.MustParsePrefix("2002::/16")
)

func describeAddrs(host string, addrs []netip.Addr) string {
	if a, err := netip.ParseAddr(host); err == nil && len(addrs) == 1 && addrs[0] == a.Unmap() {
		return "a loopback or private address"
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return "a name resolving to " + strings.Join(s, ", ")
}

// forbiddenRealm says why no token request may go to u, announced by registry, when one of addrs is a
// metadata, link-local, multicast or unspecified address.
func forbiddenRealm(registry, u *url.URL, addrs []netip.Addr) error {
	for _, a := range addrs {
		if forbiddenRealmAddr(a) {
			return fmt.Errorf("registry %s names %s as its token service, on %s: a cloud metadata, link-local, multicast or unspecified address; never sent credentials, even with --token-realm",
				registry.Host, redact(u), a)
		}
	}
	return nil
}

// embeddedV4 returns the IPv4 address carried in a NAT64 or 6to4 address.
func embeddedV4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	for _, p := range nat64Prefixes {
		if p.Contains(a) {
			return netip.AddrFrom4([4]byte(b[12:16])), true
		}
	}
	if sixToFour.Contains(a) {
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// forbiddenRealmAddr reports whether a token request must never go to a: a cloud metadata service
// (metadataPrefixes), link-local, unspecified or multicast, also when carried in a NAT64 or 6to4
// address.
func forbiddenRealmAddr(a netip.Addr) bool {
	a = a.Unmap()
	if v4, ok := embeddedV4(a); ok && forbiddenRealmAddr(v4) {
		return true
	}
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range metadataPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// internalAddr reports whether oras-go refuses a realm on a (loopback, private, CGNAT; link-local and
// unspecified are forbidden here anyway), counting the IPv4 address inside NAT64 and 6to4 addresses.
func internalAddr(a netip.Addr) bool {
	a = a.Unmap()
	if v4, ok := embeddedV4(a); ok && internalAddr(v4) {
		return true
	}
	return a.IsLoopback() || a.IsPrivate() || cgnat.Contains(a) || forbiddenRealmAddr(a)
}

func lookupAddrs(host string) ([]netip.Addr, error) {
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, err
	}
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	return addrs, nil
}

// RealmDialControl is a net.Dialer Control function for the transport of forwarded token requests: the
// last check, on the address actually connected to, that it is no metadata, link-local, multicast or
// unspecified address.
func RealmDialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("token realm address %q: %w", address, err)
	}
	if forbiddenRealmAddr(a) {
		return fmt.Errorf("token realm address %s is a cloud metadata, link-local, multicast or unspecified address; refused", a)
	}
	return nil
}
