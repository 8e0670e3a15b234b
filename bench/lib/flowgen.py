#!/usr/bin/env python3
"""Flow generator for bench/flow-setup.mjs: COUNT distinct 64-byte TCP frames
sent out of IFACE (an AF_PACKET socket; run it inside the sender's namespace)
over and over for up to SECONDS, or until stopped. Each frame is a new flow:
its own source MAC, source address and source port, so that a switch's
megaflow for it differs from every other's under NORMAL (which keeps MACs
exact) and under 5-tuple rules alike. Sending the set again and again keeps
the switch offered more than it can set up (a dropped packet comes back in
the next pass), so the rate measured is the switch's, not the generator's.
Prints "go" when the frames are built and sending starts, and on SIGTERM
"sent N in S s".
usage: flowgen.py IFACE DST_MAC COUNT FIRST SECONDS   (FIRST: index of the first flow, to keep rounds apart)"""
import signal, socket, struct, sys, time

def checksum(data):
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xffff)
    return (~(s + (s >> 16))) & 0xffff

def frame(dst, j):
    src = struct.pack('!HI', 0x0200, j)
    ip_src = struct.pack('!I', 0x0a000000 | (j & 0xffffff)) if j < 1 << 24 else struct.pack('!I', 0x0b000000 | (j & 0xffffff))
    ip_dst = bytes([10, 255, 0, 2])
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40, 0, 0x4000, 64, 6, 0, ip_src, ip_dst)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    sport = 1024 + j % 60000
    tcp = struct.pack('!HHIIBBHHH', sport, 80, 1, 0, 0x50, 0x02, 8192, 0, 0)
    return dst + src + b'\x08\x00' + ip + tcp + bytes(6)

def main():
    iface, dst, count = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), int(sys.argv[3])
    first, seconds = int(sys.argv[4]), float(sys.argv[5])
    frames = [frame(dst, first + i) for i in range(count)]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    t = time.monotonic()

    def done(*_):
        print('sent %d in %.3f s' % (sent, time.monotonic() - t), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    print('go', flush=True)
    while time.monotonic() - t < seconds:
        for f in frames:
            try:
                s.send(f)
                sent += 1
            except OSError as e:  # ENOBUFS, EAGAIN: the device queue is full; the frame comes again next pass
                if e.errno not in (105, 11):
                    raise
    done()

main()
