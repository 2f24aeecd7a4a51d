// The store's failures, each carrying the errno the filesystem layer should answer with.
namespace DedupFs.Store;

/// <summary>A store failure that maps to an errno (EIO unless stated).</summary>
public class StoreException : IOException
{
    /// <summary>The errno a filesystem request failing with this exception should get.</summary>
    public int Errno { get; }

    /// <summary>Creates the exception.</summary>
    public StoreException(string message, int errno = Errno_EIO, Exception? inner = null) : base(message, inner) => Errno = errno;

    /// <summary>EIO.</summary>
    public const int Errno_EIO = 5;
}

/// <summary>The store cannot be opened: unknown version, damaged or missing metadata. Nothing was changed.</summary>
public sealed class StoreFormatException(string message, Exception? inner = null) : StoreException(message, Errno_EIO, inner);

/// <summary>A page read from disk does not match its checksum: EIO to the reader.</summary>
public sealed class PageChecksumException(PageId page, uint expected, uint actual)
    : StoreException($"{page} (slot {page.Slot}): checksum mismatch, stored crc32c {expected:x8}, read {actual:x8}")
{
    /// <summary>The damaged page.</summary>
    public PageId Page { get; } = page;
}

/// <summary>A metadata record failed its checksum.</summary>
public sealed class MetadataChecksumException(string where) : StoreException($"metadata record {where}: checksum mismatch");

/// <summary>Writing new page data failed (ENOSPC, EIO); nothing refers to the slots tried, the store is consistent.</summary>
public sealed class PageWriteException(string message, int errno, Exception inner) : StoreException(message, errno, inner);
