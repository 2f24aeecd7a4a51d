namespace DedupFs.Fuse.Api;

public enum FuseLogLevel
{
    Debug,
    Info,
    Warning,
    Error,
}

/// <summary>Where the session reports what it could not handle. Called off the hot path only.</summary>
public interface IFuseLogger
{
    void Log(FuseLogLevel level, string message);
}

/// <summary>Writes warnings and errors to standard error with a timestamp.</summary>
public sealed class StderrFuseLogger : IFuseLogger
{
    public static readonly StderrFuseLogger Instance = new();

    public FuseLogLevel MinimumLevel { get; init; } = FuseLogLevel.Warning;

    public void Log(FuseLogLevel level, string message)
    {
        if (level >= MinimumLevel)
        {
            Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} fuse {level.ToString().ToLowerInvariant()}: {message}");
        }
    }
}
