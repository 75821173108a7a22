// Command smtpbench is the Go half of scripts/bench-smtp.sh: a minimal
// go-smtp server that reads every mail and discards it (the baseline the
// listener is measured against), and an open-loop client that sends mails
// at a fixed rate and reports the time from the end of DATA to the reply.
//
//	smtpbench discard -listen 127.0.0.1:2526
//	smtpbench latency -addr 127.0.0.1:2525 -rate 1000 -duration 10s -conns 20 -size 4096
//
// It is a measuring tool, not part of trackerd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: smtpbench discard|latency [flags]")
	}
	var err error
	switch os.Args[1] {
	case "discard":
		err = discard(os.Args[2:])
	case "latency":
		err = latency(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		log.Fatal("smtpbench: ", err)
	}
}

// discard runs a go-smtp server with the same limits as trackerd's
// listener whose sessions read each mail and drop it, until SIGTERM.
func discard(args []string) error {
	fs := flag.NewFlagSet("discard", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:2526", "address to listen on")
	_ = fs.Parse(args)
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &discardSession{}, nil }))
	s.Domain = "discard.localhost"
	s.MaxMessageBytes = 26214400
	s.MaxRecipients = 50
	s.MaxLineLength = 2000
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	s.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	fmt.Fprintln(os.Stderr, "discard ready on", ln.Addr())
	if err := s.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	return nil
}

type discardSession struct{}

func (*discardSession) Reset()                               {}
func (*discardSession) Logout() error                        { return nil }
func (*discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*discardSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// latency sends mails at a fixed rate over a pool of connections and
// prints the distribution of the time from the end of DATA (the final
// ".") to the server's reply.
func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:2525", "server address")
	rate := fs.Int("rate", 1000, "mails per second, all connections together")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	conns := fs.Int("conns", 20, "connections")
	size := fs.Int("size", 4096, "approximate mail size in bytes")
	from := fs.String("from", "bench@example.org", "envelope and header sender")
	to := fs.String("to", "tracker@localhost", "recipient")
	_ = fs.Parse(args)

	total := int(float64(*rate) * duration.Seconds())
	jobs := make(chan int, total)
	var (
		mu    sync.Mutex
		lat   []time.Duration
		fails int
		first error
	)
	var wg sync.WaitGroup
	body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", max(*size/78, 1))
	run := fmt.Sprint(time.Now().UnixNano())
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := smtp.Dial(*addr)
			if err != nil {
				mu.Lock()
				fails++
				first = cmp(first, err)
				mu.Unlock()
				for range jobs {
				}
				return
			}
			defer cl.Close()
			if err := cl.Hello("bench.localhost"); err != nil {
				log.Printf("hello: %v", err)
			}
			for n := range jobs {
				d, err := sendOne(cl, *from, *to, fmt.Sprintf("<%s.%d@bench.localhost>", run, n), body)
				mu.Lock()
				if err != nil {
					fails++
					first = cmp(first, err)
					_ = cl.Reset()
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
			_ = cl.Quit()
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	for i := 0; i < total; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("sent=%d ok=%d failed=%d offered_rate=%d/s achieved=%.0f/s p50=%.1fms p90=%.1fms p99=%.1fms max=%.1fms\n",
		total, len(lat), fails, *rate, float64(len(lat))/took.Seconds(),
		ms(pct(.5)), ms(pct(.9)), ms(pct(.99)), ms(pct(1)))
	if first != nil {
		fmt.Fprintln(os.Stderr, "first error:", first)
	}
	return nil
}

// sendOne sends one mail and returns the time from writing the final
// "." of DATA to reading the server's reply.
func sendOne(cl *smtp.Client, from, to, msgID, body string) (time.Duration, error) {
	if err := cl.Mail(from, nil); err != nil {
		return 0, err
	}
	if err := cl.Rcpt(to, nil); err != nil {
		return 0, err
	}
	w, err := cl.Data()
	if err != nil {
		return 0, err
	}
	hdr := "From: <" + from + ">\r\nTo: <" + to + ">\r\nSubject: latency bench\r\nMessage-ID: " + msgID + "\r\n\r\n"
	if _, err := io.WriteString(w, hdr+body); err != nil {
		return 0, err
	}
	start := time.Now()
	err = w.Close() // writes ".", waits for the reply
	return time.Since(start), err
}

func cmp(first, err error) error {
	if first == nil {
		return err
	}
	return first
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
