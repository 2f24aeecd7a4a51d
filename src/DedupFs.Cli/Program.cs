// dedupfs: the command line. Each subcommand lives in Commands/; errors are one line on
// standard error and a non-zero exit.
using System.CommandLine;
using DedupFs.Cli.Commands;

var root = new RootCommand("DedupFs: a deduplicating FUSE filesystem. Identical 4 KiB pages across files, clones and container layers are stored once and cached once.");
root.Subcommands.Add(MountCommand.Create());
root.Subcommands.Add(UmountCommand.Create());
root.Subcommands.Add(StatsCommand.Create());
root.Subcommands.Add(CloneCommand.Create());
root.Subcommands.Add(SharesCommand.Create());
root.Subcommands.Add(FsckCommand.Create());
root.Subcommands.Add(KsmCommand.Create());
root.Subcommands.Add(ImageCommand.Create());

// mount.fuse3 (and so an fstab line "STORE MNT fuse.dedupfs OPTIONS 0 0") runs
// "dedupfs STORE MNT -o OPTIONS": two paths where a command name would be.
if (args.Length >= 2 && !args[0].StartsWith('-') && root.Subcommands.All(c => c.Name != args[0]))
{
    args = ["mount", "--store", args[0], .. args[1..]];
}

return root.Parse(args).Invoke();
