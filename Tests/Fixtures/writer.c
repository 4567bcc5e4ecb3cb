/*
 * writer: test/benchmark fixture for paas.
 *
 * usage: writer COUNT SIZE MODE
 *
 * Writes COUNT lines to stdout, each exactly SIZE bytes including the
 * trailing newline: "<PS> <seq> xxxx...\n", PS from the environment
 * (default "w"), seq from 0 to COUNT-1, padded with 'x'.
 *
 * MODE "line":  one write() per line.
 * MODE "block": lines are packed back to back into a 102400-byte buffer
 *               (lines may straddle buffer boundaries) and whole buffers
 *               are written; the last one may be shorter.
 *
 * Partial writes and EINTR are retried. Exits 0 on success, 1 on error,
 * 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK_SIZE 102400

static void write_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("writer: write");
            exit(1);
        }
        buf += (size_t)n;
        len -= (size_t)n;
    }
}

/* Formats line `seq` into out (exactly size bytes). Returns 0, or -1 if the
 * prefix does not fit. */
static int format_line(char *out, size_t size, const char *ps, long seq) {
    int n = snprintf(out, size + 1, "%s %ld ", ps, seq);
    if (n < 0 || (size_t)n + 1 > size)
        return -1;
    memset(out + n, 'x', size - 1 - (size_t)n);
    out[size - 1] = '\n';
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: writer COUNT SIZE line|block\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 4)
        usage();
    char *end;
    long count = strtol(argv[1], &end, 10);
    if (*end != '\0' || count < 0)
        usage();
    long lsize = strtol(argv[2], &end, 10);
    if (*end != '\0' || lsize < 2 || lsize > 1048576)
        usage();
    size_t size = (size_t)lsize;
    int block;
    if (strcmp(argv[3], "line") == 0)
        block = 0;
    else if (strcmp(argv[3], "block") == 0)
        block = 1;
    else
        usage();

    const char *ps = getenv("PS");
    if (ps == NULL || *ps == '\0')
        ps = "w";

    char *line = malloc(size + 1);
    char *buf = block ? malloc(BLOCK_SIZE) : NULL;
    if (line == NULL || (block && buf == NULL)) {
        fprintf(stderr, "writer: out of memory\n");
        return 1;
    }

    size_t fill = 0;
    for (long seq = 0; seq < count; seq++) {
        if (format_line(line, size, ps, seq) != 0) {
            fprintf(stderr, "writer: SIZE %zu too small for \"%s %ld \"\n", size, ps, seq);
            return 1;
        }
        if (!block) {
            write_all(line, size);
            continue;
        }
        size_t off = 0;
        while (off < size) {
            size_t chunk = size - off;
            if (chunk > BLOCK_SIZE - fill)
                chunk = BLOCK_SIZE - fill;
            memcpy(buf + fill, line + off, chunk);
            fill += chunk;
            off += chunk;
            if (fill == BLOCK_SIZE) {
                write_all(buf, fill);
                fill = 0;
            }
        }
    }
    if (block && fill > 0)
        write_all(buf, fill);
    free(line);
    free(buf);
    return 0;
}
