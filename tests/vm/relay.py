#!/usr/bin/env python3
"""TCP relay for the gemlive test VM (standard library only, one thread per direction).

Guest mode (default), run INSIDE the VM:
    relay.py [--listen 127.0.0.1] [--to 10.0.2.100] [--pidfile F] PORT[:TOPORT] ...
  listens on LISTEN:PORT and forwards every connection to TO:TOPORT (default TOPORT = PORT).
  gemlive only accepts plain ws:// to loopback hosts, while the host's stand-in server is at
  10.0.2.100:PORT in the guest (vmrun.sh HOSTFWD_PORTS). So a scenario starts
  `relay.py PORT &` and points gemlive at ws://127.0.0.1:PORT/... instead of weakening that rule.
  Prints "relay: listening ..." (flushed) once all ports are bound; SIGTERM/SIGINT stop it
  cleanly (exit 0, pidfile removed).

Connector mode, used by vmrun.sh on the HOST when socat is missing:
    relay.py --stdio HOST:PORT
  connects to HOST:PORT and pumps stdin -> socket and socket -> stdout (qemu's guestfwd cmd:
  form spawns one connector per guest connection, with the connection on stdin/stdout).
"""
import argparse, os, signal, socket, sys, threading

BUF = 65536


def pump_sock(src, dst, done):
    """Copy src -> dst until EOF, then half-close dst so the peer sees EOF too."""
    try:
        while True:
            data = src.recv(BUF)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        done()


def handle(client, target):
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError as e:
        print(f"relay: connect {target[0]}:{target[1]} failed: {e}", file=sys.stderr, flush=True)
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    left = [2]
    lock = threading.Lock()

    def done():
        with lock:
            left[0] -= 1
            if left[0] == 0:
                client.close()
                upstream.close()

    threading.Thread(target=pump_sock, args=(client, upstream, done), daemon=True).start()
    threading.Thread(target=pump_sock, args=(upstream, client, done), daemon=True).start()


def serve(listener, target):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(client, target), daemon=True).start()


def stdio_connector(spec):
    host, port = spec.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # raw fds 0/1 (qemu hands over the guest connection as stdin/stdout; stderr goes there too)

    def to_sock():
        try:
            while True:
                data = os.read(0, BUF)
                if not data:
                    break
                sock.sendall(data)
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=to_sock, daemon=True).start()
    try:
        while True:
            data = sock.recv(BUF)
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
    except OSError:
        pass
    sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ports", nargs="*", help="PORT or PORT:TOPORT")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--to", default="10.0.2.100")
    ap.add_argument("--pidfile")
    ap.add_argument("--stdio", metavar="HOST:PORT", help="connector mode (see above)")
    a = ap.parse_args()
    if a.stdio:
        stdio_connector(a.stdio)
        return 0
    if not a.ports:
        ap.error("no ports given")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    listeners = []
    for spec in a.ports:
        lport, _, tport = spec.partition(":")
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((a.listen, int(lport)))
        ls.listen(64)
        listeners.append(ls)
        threading.Thread(target=serve, args=(ls, (a.to, int(tport or lport))), daemon=True).start()
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    print(f"relay: listening on {a.listen}:{','.join(a.ports)} -> {a.to}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for ls in listeners:
            ls.close()
        if a.pidfile:
            try:
                os.unlink(a.pidfile)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
