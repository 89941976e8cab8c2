"""OSC transports for the protocol: UDP datagrams (OSC 1.0) and TCP with SLIP framing (OSC 1.1).

Both listen on loopback by default. Binding another interface needs an explicit allow-list of client networks;
datagrams and connections from elsewhere are ignored. Each packet is handled on its own thread, so a running
job never delays a ping.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading

from pythonosc import slip
from pythonosc.osc_message_builder import build_msg

from restyle.engine import SettingsError

from .protocol import RestyleProtocol
from .wire import DEFAULT_PORT

MAX_DATAGRAM = 65535


class UdpPeer:
    """A client reached by datagrams from the server's own socket (so replies come from the port it talked to)."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]):
        self.sock = sock
        self.address = (address[0], int(address[1]))
        self.host = address[0]
        self.key = ("udp", *self.address)

    def send(self, address: str, args: list) -> None:
        self.sock.sendto(build_msg(address, args).dgram, self.address)

    def redirect(self, host: str, port: int) -> "UdpPeer":
        """The same client, answered at another host/port (``/restyle/hello``)."""
        return UdpPeer(self.sock, (host, port))


class TcpPeer:
    """A client on an open TCP connection; frames are SLIP-encoded (OSC 1.1)."""

    def __init__(self, connection: socket.socket, address: tuple[str, int]):
        self.connection = connection
        self.host = address[0]
        self.key = ("tcp", *address)
        self._lock = threading.Lock()

    def send(self, address: str, args: list) -> None:
        frame = slip.encode(build_msg(address, args).dgram)
        with self._lock:
            self.connection.sendall(frame)


class ClientFilter:
    """Loopback is always allowed; other clients only from the networks given with --allow."""

    def __init__(self, host: str, allow: list[str]):
        try:
            self.networks = [ipaddress.ip_network(n, strict=False) for n in allow]
        except ValueError as exc:
            raise SettingsError(f"--allow takes networks such as 192.168.1.0/24: {exc}") from None
        if not _is_loopback(host) and not self.networks:
            raise SettingsError(
                f"Listening on {host} would expose the engine to the network: add --allow NETWORK (e.g. "
                "192.168.1.0/24) for the machines that may use it, or keep the default 127.0.0.1."
            )

    def allows(self, client_host: str) -> bool:
        ip = ipaddress.ip_address(client_host)
        return ip.is_loopback or any(ip in network for network in self.networks)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True
    max_packet_size = MAX_DATAGRAM


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class OscServer:
    """Serves one protocol over UDP and TCP; ``port=0`` picks free ports (tests)."""

    def __init__(self, protocol: RestyleProtocol, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 tcp_port: int | None = None, allow: list[str] | None = None):
        self.protocol = protocol
        self.filter = ClientFilter(host, allow or [])
        protocol.reply_allowed = self.filter.allows  # /restyle/hello may only point replies at allowed clients
        outer = self

        class UdpHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                outer.protocol.handle_packet(data, UdpPeer(sock, self.client_address))

        class TcpHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve_connection(self.request, self.client_address)

        try:
            self.udp = _UdpServer((host, port), UdpHandler)
            self.tcp = _TcpServer((host, port if tcp_port is None else tcp_port), TcpHandler)
        except OSError as exc:
            raise SettingsError(f"Cannot listen on {host}:{port} ({exc.strerror}); is another server running? "
                                "Pick another --port.") from None
        for server in (self.udp, self.tcp):
            server.verify_request = lambda _request, client, _s=server: self.filter.allows(client[0])
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def udp_port(self) -> int:
        return self.udp.server_address[1]

    @property
    def tcp_port(self) -> int:
        return self.tcp.server_address[1]

    def start(self) -> None:
        self.protocol.start()
        for name, target in (("udp", self._serve(self.udp)), ("tcp", self._serve(self.tcp)), ("heartbeat", self._heartbeat)):
            thread = threading.Thread(target=target, daemon=True, name=f"restyle-{name}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop listening, cancel queued and running jobs (no half-written output), close sockets."""
        self._stopping.set()
        self.udp.shutdown()
        self.tcp.shutdown()
        self.protocol.stop()
        self.udp.server_close()
        self.tcp.server_close()

    @staticmethod
    def _serve(server: socketserver.BaseServer):
        return lambda: server.serve_forever(poll_interval=0.1)

    def _heartbeat(self) -> None:
        while not self._stopping.wait(1.0):
            self.protocol.heartbeat()

    def _serve_connection(self, connection: socket.socket, address: tuple[str, int]) -> None:
        peer = TcpPeer(connection, address)
        buffer = b""
        while not self._stopping.is_set():
            try:
                chunk = connection.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *frames, buffer = buffer.split(slip.END)  # SLIP frames end (and may start) with END
            for frame in frames:
                if frame:
                    try:
                        packet = slip.decode(slip.END + frame + slip.END)
                    except slip.ProtocolError:
                        self.protocol.send(peer, "error", ["", "malformed", "Could not read that SLIP frame."])
                        continue
                    self.protocol.handle_packet(packet, peer)
            if len(buffer) > 1 << 20:
                self.protocol.send(peer, "error", ["", "malformed", "Frame over 1 MB; closing the connection."])
                return
