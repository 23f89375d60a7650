# Sourced by the benchmark scripts: a free port, and a server of their data folder with the demo
# GP signed in.
# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Serves the data folder $tmp with the site $site on a free port (its pid in `pid`, its address in
# `base`) and signs the demo GP in: her cookies in the file `jar`.
serve_signed_in_as_gp() {
  port=$(free_port)
  "$bin" --data-dir "$tmp" --log-level warn serve --listen "127.0.0.1:$port" --site-root "$site" >/dev/null &
  pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  jar="$tmp/cookies"
  curl -s -o /dev/null -c "$jar" -H "Origin: $base" -d "login=medecin&password=demo-medecin-2026" "$base/auth/sign-in"
}

