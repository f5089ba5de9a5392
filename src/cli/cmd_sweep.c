/* ecprune sweep — placeholder until its issue lands. */
#include "cli.h"

int cmd_sweep(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ecprune sweep: not available in this build yet\n");
    return 1;
}
