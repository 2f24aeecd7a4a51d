// dedupfs: the command line. Each subcommand lives in Commands/; errors are one line on
// standard error and a non-zero exit.
using System.CommandLine;
using DedupFs.Cli.Commands;

var root = new RootCommand("DedupFs: a deduplicating FUSE filesystem. Identical 4 KiB pages across files, clones and container layers are stored once and cached once.");
root.Subcommands.Add(UmountCommand.Create());
root.Subcommands.Add(FsckCommand.Create());
return root.Parse(args).Invoke();
