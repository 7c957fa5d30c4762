package provider

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// AddrChecker decides whether a provider may connect to an address. The
// server's target policy implements it.
type AddrChecker interface {
	CheckAddr(netip.Addr) error
}

type checkerKey struct{}

// WithChecker returns ctx carrying c: the connections a provider opens for
// calls made with ctx apply c to the address they dial, after name
// resolution, so that a name resolving elsewhere when it is dialled than when
// it was checked (DNS rebinding) still cannot reach a denied address.
func WithChecker(ctx context.Context, c AddrChecker) context.Context {
	return context.WithValue(ctx, checkerKey{}, c)
}

// CheckerFrom returns the checker ctx carries, or nil.
func CheckerFrom(ctx context.Context) AddrChecker {
	c, _ := ctx.Value(checkerKey{}).(AddrChecker)
	return c
}

// PoolKey names c in the key of a pool of connections dialled with it, so
// that a pool is only ever shared by calls under the same checker. (Pooled
// clients dial in the background with contexts of their own: the checker is
// bound to the pool when it is made, never read from a dial's context.)
func PoolKey(c AddrChecker) string { return fmt.Sprintf("%T:%p", c, c) }

// NetDialer returns a dialer that applies c (nil: none) to every address it
// connects to.
func NetDialer(c AddrChecker) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if c != nil {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			return c.CheckAddr(ap.Addr())
		}
	}
	return d
}

// DialFunc is NetDialer(c).DialContext.
func DialFunc(c AddrChecker) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return NetDialer(c).DialContext
}
