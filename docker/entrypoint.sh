#!/bin/sh
# Says the container is up (the test runtime waits for this line, then for nginx's listeners),
# then becomes the command: nginx stays PID 1, so stopping it stops the container.
echo "mtls-pool container: starting $*"
exec "$@"
