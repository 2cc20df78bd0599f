#!/bin/bash
# HAProxy and the router in one container. When either ends, the container
# ends, and its restart policy starts both again.
set -u

haproxy -W -db -f /etc/haproxy/haproxy.cfg &
"$@" &

trap 'kill -TERM $(jobs -p) 2>/dev/null' TERM INT
wait -n
status=$?
kill -TERM $(jobs -p) 2>/dev/null
exit "$status"
