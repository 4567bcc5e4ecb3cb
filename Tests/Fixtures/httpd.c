/* A tiny HTTP/1.1 server for the router's benchmarks: epoll, keep-alive, one fixed answer
 * ("<PS>\n") to every GET on $PORT (500 when FAIL=1). Single-threaded; exits 0 on SIGTERM. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXCONN 65536
static char *bufs[MAXCONN];
static int lens[MAXCONN];
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

int main(void) {
    const char *port = getenv("PORT"), *name = getenv("PS");
    if (!port) { fprintf(stderr, "PORT not set\n"); return 2; }
    char body[128], resp[512];
    snprintf(body, sizeof body, "%s\n", name ? name : "httpd");
    const char *status = getenv("FAIL") ? "500 Internal Server Error" : "200 OK";
    int rlen = snprintf(resp, sizeof resp, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s", status, strlen(body), body);
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) { perror("bind/listen"); return 1; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("%s listening on %s\n", body[0] ? name : "httpd", port);
    fflush(stdout);
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 200);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAXCONN) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (!bufs[c]) bufs[c] = malloc(8192);
                    lens[c] = 0;
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, bufs[fd] + lens[fd], 8192 - lens[fd]);
            if (r <= 0) { if (r == 0 || errno != EAGAIN) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); close(fd); } continue; }
            lens[fd] += r;
            char *p;
            /* One answer per complete request head (GET: no body). */
            while ((p = memmem(bufs[fd], lens[fd], "\r\n\r\n", 4))) {
                int used = (int)(p - bufs[fd]) + 4;
                if (write(fd, resp, rlen) < 0) break;
                memmove(bufs[fd], bufs[fd] + used, lens[fd] - used);
                lens[fd] -= used;
            }
            if (lens[fd] == 8192) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); close(fd); }
        }
    }
    return 0;
}
