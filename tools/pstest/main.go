// Command pstest serves Google's in-process Pub/Sub fake (cloud.google.com/go/pubsub/v2/pstest) on
// a TCP address, for tests and the local stack: clients reach it with PUBSUB_EMULATOR_HOST. It is
// plain gRPC without TLS, keeps everything in memory and has no HTTP push delivery (garden-deploy's
// pull subscriber stands in for push).
//
// Usage: pstest [-host 127.0.0.1] [-port 0]
// Prints "pstest listening on HOST:PORT" once it serves; exits on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	host := flag.String("host", "127.0.0.1", "interface to listen on")
	port := flag.Int("port", 0, "TCP port (0 picks a free one)")
	flag.Parse()
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(os.Stderr, "pstest: -port %d is not a TCP port (0-65535)\n", *port)
		os.Exit(2)
	}
	server := pstest.NewServerWithAddress(net.JoinHostPort(*host, strconv.Itoa(*port)))
	// The line the local stack waits for; stdout is flushed per write.
	fmt.Printf("pstest listening on %s\n", server.Addr)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	if err := server.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "pstest: close: %v\n", err)
		os.Exit(1)
	}
}
