//go:build linux

package procs

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// tcpListen is the kernel's TCP_LISTEN state as printed in /proc/net/tcp.
const tcpListen = "0A"

// procRoot is where proc is mounted.
const procRoot = "/proc"

// ListenersOnPort returns every process with a TCP socket listening on
// port, one Holder per process and address, sorted by PID then address. It
// reads /proc/net/tcp and /proc/net/tcp6 of the caller's network namespace
// and maps socket inodes to processes through /proc/PID/fd. Processes whose
// fds the caller may not read are invisible; if a listening socket exists
// but no owner is visible, the error says so (run as root or as the owner).
func ListenersOnPort(port int) ([]Holder, error) {
	if err := checkPort(port); err != nil {
		return nil, err
	}
	sockets := map[uint64]string{} // inode → address
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(procRoot, "net", name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && name == "tcp6" {
				continue // kernel without IPv6
			}
			return nil, fmt.Errorf("read listening sockets: %w (is /proc mounted?)", err)
		}
		socks, err := parseNetTCP(f, port)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f.Name(), err)
		}
		for _, s := range socks {
			sockets[s.inode] = s.addr
		}
	}
	if len(sockets) == 0 {
		return nil, nil
	}
	holders, err := owners(sockets)
	if err != nil {
		return nil, err
	}
	if len(holders) == 0 {
		return nil, fmt.Errorf("a socket listens on port %d but its process is not visible to this user; run as root (or as the process's owner) or stop it yourself: %w", port, fs.ErrPermission)
	}
	return holders, nil
}

type socket struct {
	addr  string
	inode uint64
}

// parseNetTCP returns the LISTEN sockets on port from a /proc/net/tcp or
// tcp6 table.
func parseNetTCP(r io.Reader, port int) ([]socket, error) {
	var out []socket
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			return nil, fmt.Errorf("short line %q", sc.Text())
		}
		if f[3] != tcpListen {
			continue
		}
		ip, p, err := parseHexAddr(f[1])
		if err != nil {
			return nil, err
		}
		if p != port {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad inode in %q: %w", sc.Text(), err)
		}
		out = append(out, socket{addr: netip.AddrPortFrom(ip, uint16(p)).String(), inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddr decodes "0100007F:1F90": the address is the kernel's
// in-memory bytes printed as 32-bit words in host byte order, the port is
// big-endian hex.
func parseHexAddr(s string) (netip.Addr, int, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad port in %q: %w", s, err)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip.Unmap(), int(port), nil
}

// owners maps socket inodes to the processes holding them.
func owners(sockets map[uint64]string) ([]Holder, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w (is /proc mounted?)", err)
	}
	var out []Holder
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		fdDir := filepath.Join(procRoot, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or not ours to read
		}
		seen := map[uint64]bool{}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil || seen[inode] {
				continue
			}
			if addr, ok := sockets[inode]; ok {
				seen[inode] = true
				out = append(out, Holder{PID: pid, Cmdline: cmdline(pid), Addr: addr})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PID != out[j].PID {
			return out[i].PID < out[j].PID
		}
		return out[i].Addr < out[j].Addr
	})
	return out, nil
}

func cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		b, _ = os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
		return strings.TrimSpace(string(b))
	}
	return strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
}
