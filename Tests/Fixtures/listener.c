/*
 * listener: test/benchmark fixture for paas.
 *
 * Binds 127.0.0.1:$PORT (SO_REUSEADDR), listens, prints "listening <PORT>\n"
 * to stdout (flushed), then accepts and closes connections forever.
 * Exits 1 with a message on stderr on any error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "listener: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(void) {
    const char *env = getenv("PORT");
    if (env == NULL || *env == '\0') {
        fprintf(stderr, "listener: PORT is not set\n");
        return 1;
    }
    char *end;
    long port = strtol(env, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "listener: bad PORT \"%s\"\n", env);
        return 1;
    }

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        die("setsockopt");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    if (listen(fd, 128) != 0)
        die("listen");

    printf("listening %ld\n", port);
    if (fflush(stdout) != 0)
        die("fflush");

    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            die("accept");
        }
        close(c);
    }
}
