# Helpers the bench scripts share; sourced, with `workdir` (a temporary
# directory) and `pids` (processes to stop at the end) set by the caller.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # URL LOG
    for _ in $(seq 1 200); do
        if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "bench: $1 did not answer; its log:" >&2
    cat "$2" >&2
    exit 1
}

# A private clickhouse-server: a minimal config of our own (starts in well
# under a second), loopback only, every path inside the work directory.
start_clickhouse() {
    local dir="$workdir/clickhouse" tcp http
    tcp=$(free_port)
    http=$(free_port)
    mkdir -p "$dir"
    cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/error.log</errorlog><size>100M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp</tcp_port>
  <http_port>$http</http_port>
  <interserver_http_port>$(free_port)</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>1073741824</mark_cache_size>
  <query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>
</yandex>
XML
    cat >"$dir/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
  <profiles><default><log_queries>1</log_queries></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
    (cd "$dir" && exec clickhouse-server --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1) &
    pids+=($!)
    wait_for "http://127.0.0.1:$http/?query=SELECT%201" "$dir/error.log"
    export CLICKHOUSE_DSN="clickhouse://default:@127.0.0.1:$tcp/bench"
    echo "bench: clickhouse-server $(curl -fsS "http://127.0.0.1:$http/?query=SELECT%20version()") on 127.0.0.1:$tcp (HTTP $http)"
}
