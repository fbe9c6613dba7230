# Sourced by scripts that need a real HTTP server on loopback.
#   start_nginx WORKDIR 'http-level directives' 'server-block directives'
# Runs nginx as root (its workers must read WORKDIR) with every temp path inside
# WORKDIR; the caller's EXIT trap kills "$WORKDIR"/*.pid.
start_nginx() {
  local work=$1 http_extra=$2 server=$3
  mkdir -p "$work/tmp"
  cat > "$work/nginx.conf" <<CONF
user root;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp; uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  $http_extra
  server { $server }
}
CONF
  nginx -c "$work/nginx.conf"
}
