/*
 * main.c - the `ppdb-bench` binary: a dispatcher over benchmark
 * subcommands, each a main-like function in its own area of bench/.
 *
 * Adding a subcommand (dgram, stream, resp, ...) is one row in `commands`
 * and its sources in bench/CMakeLists.txt; nothing else here changes.
 */
#include <stdio.h>
#include <string.h>

#include "engine/engine_bench.h"

struct bench_command {
    const char *name;
    int (*main_fn)(int argc, char **argv); /* argv[0] is the subcommand */
    const char *help;
};

static const struct bench_command commands[] = {
    {"engine", ppdb_bench_engine_main,
     "db_bench-style workloads on PPDB's engine, LevelDB, RocksDB and LMDB"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ppdb-bench <command> [options]   (ppdb-bench <command> --help)\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].main_fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "ppdb-bench: unknown command %s\n", argv[1]);
    usage(stderr);
    return 2;
}
