using System.Diagnostics;
using DedupFs.Fuse.Mounting;

namespace DedupFs.Tests.Support;

/// <summary>
/// Runs the real command line (dedupfs.dll, the one the test project builds) in child processes,
/// each with a time limit, so a test drives DedupFs exactly as a user does and never hangs.
/// </summary>
internal static class Dedupfs
{
    // The test project's reference to the Cli project puts the command beside the tests.
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "dedupfs.dll");

    public static (int Exit, string Output, string Error) Run(params string[] args) => Run(TimeSpan.FromSeconds(120), args);

    public static (int Exit, string Output, string Error) Run(TimeSpan limit, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Dll);
        foreach (string a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"dedupfs {string.Join(' ', args)} did not finish in {limit.TotalSeconds} s; stderr: {stderr.Result}");
        }

        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>
/// A store and a mount point in fresh temporary directories, mounted with `dedupfs mount`; Dispose
/// unmounts with `dedupfs umount` and, if that fails, aborts the connection, detaches the mount
/// and ends the daemon this test started (by its pid), then deletes both directories.
/// </summary>
internal sealed class CliMount : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("dedupfs-cli-").FullName;

    public string Store => Path.Combine(_root, "store");
    public string MountPoint => Path.Combine(_root, "mnt");
    public string Options { get; }

    public CliMount(string options = "")
    {
        Options = options;
        Mount();
    }

    public string PathOf(string name) => Path.Combine(MountPoint, name);

    public void Mount()
    {
        var args = new List<string> { "mount", "--store", Store, MountPoint };
        if (Options.Length > 0) args.AddRange(["-o", Options]);
        var (exit, _, error) = Dedupfs.Run([.. args]);
        if (exit != 0)
        {
            string log = File.Exists(Path.Combine(Store, "dedupfs.log")) ? File.ReadAllText(Path.Combine(Store, "dedupfs.log")) : "";
            throw new InvalidOperationException($"mount failed ({exit}): {error}\n{log}");
        }
    }

    public int DaemonPid => int.Parse(File.ReadAllText(Path.Combine(MountPoint, ".dedupfs", "pid")).Trim());

    public void Unmount()
    {
        var (exit, _, error) = Dedupfs.Run("umount", MountPoint);
        Assert.True(exit == 0, $"umount failed ({exit}): {error}");
    }

    public bool IsMounted => MountTable.FindFuse(MountPoint) is not null;

    public void Dispose()
    {
        try
        {
            if (IsMounted)
            {
                int? pid = null;
                try
                {
                    pid = DaemonPid;
                }
                catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
                {
                }

                try
                {
                    Dedupfs.Run(TimeSpan.FromSeconds(60), "umount", MountPoint);
                }
                catch (TimeoutException)
                {
                }

                if (IsMounted)
                {
                    if (MountTable.FindFuse(MountPoint)?.Minor is uint minor) FuseMounter.Abort(minor);
                    FuseMounter.Unmount(MountPoint, lazy: true);
                }

                if (pid is int daemon)
                {
                    try
                    {
                        using var process = Process.GetProcessById(daemon);
                        if (!process.WaitForExit(TimeSpan.FromSeconds(30))) process.Kill();
                    }
                    catch (ArgumentException)
                    {
                        // already gone
                    }
                }
            }
        }
        finally
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
