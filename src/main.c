/* tt: one binary, several subcommands, dispatched from one table that also
 * writes the top-level help. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/childguard.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"server", "accept tunnel clients and connect their streams to destinations", tt_cmd_server},
    {"client", "run a SOCKS5 proxy and port forwards that go through a tt server", tt_cmd_client},
    {"keygen", "print a new random key for -k", tt_cmd_keygen},
    {"version", "print the version", cmd_version},
    {"help", "show help for tt or for one command (tt help COMMAND)", cmd_help},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "tt %s: one tunnel for SOCKS5, port forwards and several carriers.\n\n"
            "Usage: tt COMMAND [options]\n\nCommands:\n",
            TT_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'tt COMMAND --help' for a command's options.\n");
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("tt %s\n", TT_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const struct command *c = find(argv[1]);
    if (c == NULL || c->run == cmd_help || c->run == cmd_version) {
        if (c == NULL) {
            fprintf(stderr, "tt help: unknown command '%s'\nTry 'tt help'.\n", argv[1]);
            return 2;
        }
        usage(stdout);
        return 0;
    }
    char *args[] = {argv[1], (char *)"--help", NULL};
    return c->run(2, args);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
        return cmd_help(1, argv);
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0)
        return cmd_version(1, argv);
    /* Not in the table: not a command for users, and not in the help. */
    if (strcmp(name, TT_CHILD_GUARD_CMD) == 0)
        return tt_child_guard_main(argc, argv);
    const struct command *c = find(name);
    if (c == NULL) {
        fprintf(stderr, "tt: unknown command '%s'\nTry 'tt help'.\n", name);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
