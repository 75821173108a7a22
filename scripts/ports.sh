# ports.sh: sourced by the bench scripts (which define log).

# freeport: prints a TCP port free on the loopback now.
freeport() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# waitport PORT: until something accepts connections on it.
waitport() {
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	log "nothing listens on port $1"
	return 1
}
