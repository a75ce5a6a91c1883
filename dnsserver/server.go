package dnsserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"
)

// ServerConfig configures the listeners of a Server. The zero value of each
// field but Addr and Handler is its default.
type ServerConfig struct {
	// Addr is the UDP and TCP address, "host:port"; port 0 picks a free
	// port, the same for UDP and TCP.
	Addr    string
	Handler dns.Handler
	// UDPSockets is the number of UDP sockets bound to Addr with
	// SO_REUSEPORT, each with its own reader, so reads spread over cores;
	// 0 = GOMAXPROCS. Always 1 where there is no SO_REUSEPORT (Windows).
	UDPSockets int
	// MaxTCPConns caps open TCP connections; past it new connections wait
	// in the kernel's backlog until one closes. 0 = 1024.
	MaxTCPConns int
	// TCPIdleTimeout closes a TCP connection that sent no query for this
	// long, so idle connections cannot pin the cap; 0 = 8s.
	TCPIdleTimeout time.Duration
	// ReadTimeout bounds reading one TCP query once it started; 0 = 2s.
	ReadTimeout time.Duration
	// MaxTCPQueries is the number of queries one TCP connection may send
	// before it is closed; 0 = 128.
	MaxTCPQueries int
	// RateLimiter limits UDP responses per client network; over the limit
	// a client gets an empty reply with TC set (a "slip"), which sends a
	// real client to TCP, where no limit applies. nil = no limit.
	RateLimiter Limiter
}

// Defaults of ServerConfig.
const (
	defaultMaxTCPConns    = 1024
	defaultTCPIdleTimeout = 8 * time.Second
	defaultReadTimeout    = 2 * time.Second
	defaultMaxTCPQueries  = 128
	// bindAttempts is how often Listen tries to find a port free for both
	// UDP and TCP when Addr's port is 0.
	bindAttempts = 10
)

// Server is a set of bound DNS listeners: UDP sockets and one TCP
// listener on the same address. Listen binds them, so a port that is taken
// fails at once; Serve answers until its context is done.
type Server struct {
	cfg ServerConfig
	udp []*net.UDPConn
	tcp net.Listener
}

// Listen binds the listeners of cfg.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("dnsserver: no handler")
	}
	cfg.UDPSockets = cmp.Or(cfg.UDPSockets, runtime.GOMAXPROCS(0))
	if !portSharing {
		cfg.UDPSockets = 1
	}
	cfg.MaxTCPConns = cmp.Or(cfg.MaxTCPConns, defaultMaxTCPConns)
	cfg.TCPIdleTimeout = cmp.Or(cfg.TCPIdleTimeout, defaultTCPIdleTimeout)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, defaultReadTimeout)
	cfg.MaxTCPQueries = cmp.Or(cfg.MaxTCPQueries, defaultMaxTCPQueries)
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns address %q: %w", cfg.Addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = bindAttempts
	}
	for i := 0; ; i++ {
		s, err := bind(cfg, host, port)
		if err == nil || i+1 >= attempts || !errors.Is(err, syscall.EADDRINUSE) {
			return s, err
		}
	}
}

// bind binds the UDP sockets first (the first one picks the port when it is
// 0), then TCP on the same port.
func bind(cfg ServerConfig, host, port string) (*Server, error) {
	lc := net.ListenConfig{Control: reusePort}
	s := &Server{cfg: cfg}
	for i := 0; i < cfg.UDPSockets; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(host, port))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("dns listener udp %s: %w", net.JoinHostPort(host, port), err)
		}
		if i == 0 {
			port = strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		}
		s.udp = append(s.udp, pc.(*net.UDPConn))
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("dns listener tcp %s: %w", net.JoinHostPort(host, port), err)
	}
	s.tcp = netutil.LimitListener(ln, cfg.MaxTCPConns)
	return s, nil
}

// udpBufferSize is the receive and send buffer asked for each UDP socket.
// The read loop answers on the reading goroutine, so while it waits for a
// core the backlog queues in the kernel: the default (208 KiB, about 150
// small datagrams with their overhead) overflows under a burst.
const udpBufferSize = 4 << 20

func (s *Server) close() {
	for _, pc := range s.udp {
		_ = pc.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
}

// Addr returns the bound address ("127.0.0.1:5353"), the same for UDP and
// TCP.
func (s *Server) Addr() string { return s.udp[0].LocalAddr().String() }

// acceptQuery rejects what is not a plain query before it is unpacked:
// responses are dropped (answering them could loop or amplify); other
// opcodes (NOTIFY, UPDATE) get NOTIMP; a QDCOUNT other than 1 or records
// where a query has none get FORMERR. An IXFR may carry one SOA in the
// authority section, and the additional section an OPT (and a TSIG).
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	const qrBit = 1 << 15
	if dh.Bits&qrBit != 0 {
		return dns.MsgIgnore
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	if dh.Qdcount != 1 || dh.Ancount > 0 || dh.Nscount > 1 || dh.Arcount > 2 {
		return dns.MsgReject
	}
	return dns.MsgAccept
}

// Serve answers on every listener until ctx is done, then stops taking
// queries, answers those in flight (waiting at most shutdownTimeout), and
// returns nil. started, if not nil, is called once every listener serves.
func (s *Server) Serve(ctx context.Context, shutdownTimeout time.Duration, started func()) error {
	var udps []*udpServer
	for _, conn := range s.udp {
		u, err := newUDPServer(conn, s.cfg.Handler, s.cfg.RateLimiter)
		if err != nil {
			s.close()
			return fmt.Errorf("dns listener udp %s: %w", s.Addr(), err)
		}
		udps = append(udps, u)
	}
	tcpStarted := make(chan struct{})
	idle := s.cfg.TCPIdleTimeout
	tcp := &dns.Server{
		Listener: s.tcp, Handler: s.cfg.Handler, NotifyStartedFunc: func() { close(tcpStarted) },
		MsgAcceptFunc: acceptQuery, ReadTimeout: s.cfg.ReadTimeout, WriteTimeout: s.cfg.ReadTimeout,
		IdleTimeout: func() time.Duration { return idle }, MaxTCPQueries: s.cfg.MaxTCPQueries,
		DecorateReader: func(r dns.Reader) dns.Reader {
			return strictReader{Reader: r, side: sideOf(s.cfg.Handler), writeTimeout: s.cfg.ReadTimeout}
		},
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, u := range udps {
		g.Go(func() error {
			if err := u.serve(); err != nil && gctx.Err() == nil {
				return fmt.Errorf("dns server udp %s: %w", s.Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := tcp.ActivateAndServe(); err != nil && gctx.Err() == nil {
			return fmt.Errorf("dns server tcp %s: %w", s.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		// A dns.Server that is shut down before it started would serve
		// forever once it does: wait until it started, or something failed.
		select {
		case <-tcpStarted:
		case <-gctx.Done():
			for _, u := range udps {
				_ = u.shutdown(context.Background())
			}
			s.close()
			return nil
		}
		if started != nil {
			started()
		}
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, len(udps)+1)
		for i, u := range udps {
			wg.Go(func() { errs[i] = u.shutdown(sctx) })
		}
		wg.Go(func() { errs[len(udps)] = tcp.ShutdownContext(sctx) })
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("dns server shutdown: %w", err)
		}
		return nil
	})
	return g.Wait()
}

// Close releases the listeners of a Server that will not Serve (Serve
// closes them itself when it returns).
func (s *Server) Close() { s.close() }
