#include "cli/cli.h"

int main(int argc, char** argv) { return tune::RunCli(argc, argv); }
