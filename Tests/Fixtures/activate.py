"""systemd's socket activation, as a test needs it: holds a listening socket on PORT and runs
a command with it as descriptor 3 (LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES=NAME), starting it
again each time it exits (Restart=always), until STOPFILE exists.

usage: activate.py PORT NAME STOPFILE COMMAND [ARG...]
Prints `started PID` for each start.
"""
import os, socket, sys

port, name, stopfile, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", port))
sock.listen(1024)
while True:
    pid = os.fork()
    if pid == 0:
        os.dup2(sock.fileno(), 3)
        os.set_inheritable(3, True)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES=name)
        os.execvpe(argv[0], argv, env)
    print(f"started {pid}", flush=True)
    os.waitpid(pid, 0)
    if os.path.exists(stopfile):
        break
