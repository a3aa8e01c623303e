using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Wharf.Contracts.Oci;

namespace Wharf.Silo.Storage;

/// <summary>
/// Writes a blob or upload file front to back from a stream, with direct I/O (<c>O_DIRECT</c>) where the filesystem
/// takes it: the bytes go from this process's buffer to the disk without being copied into the page cache first. That
/// copy was most of a silo's CPU per GB pushed (docs/performance.md, "Direct writes"); written blobs are read back
/// through the page cache as before. Writes are 256 KiB aligned chunks, one in flight while the next fills; the last,
/// partial chunk is written padded to the alignment and the file cut back to its length. Where direct I/O is refused
/// (tmpfs before Linux 6.6, some network and overlay filesystems, anything not Linux, or
/// <c>Wharf:Node:DirectWrites=false</c>) the same class writes through the page cache.
/// <see cref="CompleteAsync"/> ends with fsync either way: nothing is acknowledged before it is on disk.
/// </summary>
internal sealed partial class BlobFileWriter : IAsyncDisposable
{
    /// <summary>Offset, length and address alignment direct writes keep to: a page, which covers 512 and 4 KiB sectors.</summary>
    public const int Alignment = 4096;

    /// <summary>
    /// One write, and the memory a write holds (two chunks once it passes one; one for a smaller blob): 256 KiB and 1 MiB
    /// direct writes cost the same per GB (~0.04 s of system CPU), 64 KiB 4x as much.
    /// </summary>
    public const int ChunkSize = 256 * 1024;

    private const int MaxPooled = 64;
    private static readonly ConcurrentQueue<Chunk> Pool = new();
    private static int _pooled;

    private readonly SafeFileHandle _file;
    private readonly bool _direct;
    private Chunk _current;
    private Chunk? _spare;
    private int _fill;
    private long _position;
    private Task _pending = Task.CompletedTask;

    private BlobFileWriter(SafeFileHandle file, bool direct)
    {
        _file = file;
        _direct = direct;
        _current = Rent();
    }

    /// <summary>The file's length when opened.</summary>
    public long Length { get; private set; }

    /// <summary>A new file (it must not exist).</summary>
    public static BlobFileWriter Create(string path, bool direct) => Open(path, OCreat | OExcl, direct);

    /// <summary>An existing file or a new empty one; <see cref="StartAt"/> says where writing begins.</summary>
    public static BlobFileWriter OpenOrCreate(string path, bool direct) => Open(path, OCreat, direct);

    private static BlobFileWriter Open(string path, int create, bool direct)
    {
        direct &= DirectFlag != 0;
        if (!OperatingSystem.IsLinux())
        {
            var mode = (create & OExcl) != 0 ? FileMode.CreateNew : FileMode.OpenOrCreate;
            var handle = File.OpenHandle(path, mode, FileAccess.ReadWrite, FileShare.None);
            return new BlobFileWriter(handle, false) { Length = RandomAccess.GetLength(handle) };
        }
        var fd = OpenFile(path, ORdWr | OCloExec | create | (direct ? DirectFlag : 0), 0b110_100_100);
        if (fd < 0)
        {
            throw Failed("open", path);
        }
        var file = new SafeFileHandle((nint)fd, ownsHandle: true);
        return new BlobFileWriter(file, direct) { Length = RandomAccess.GetLength(file) };
    }

    /// <summary>
    /// Cuts the file to <paramref name="offset"/> (bytes past it were never acknowledged) and appends from there. A direct
    /// writer starts at the aligned offset below, with the bytes already there read back into its first chunk.
    /// </summary>
    public void StartAt(long offset)
    {
        RandomAccess.SetLength(_file, offset);
        if (!_direct)
        {
            _position = offset;
            return;
        }
        _position = offset & ~(long)(Alignment - 1);
        var head = (int)(offset - _position);
        if (head > 0)
        {
            var read = RandomAccess.Read(_file, _current.Memory.Span[..Alignment], _position);
            if (read != head)
            {
                throw new IOException($"read {read} of the {head} bytes before offset {offset}");
            }
            _fill = head;
        }
    }

    /// <summary>Appends <paramref name="bytes"/>.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var n = Math.Min(bytes.Length, ChunkSize - _fill);
            bytes.Span[..n].CopyTo(_current.Memory.Span[_fill..]);
            _fill += n;
            bytes = bytes[n..];
            if (_fill == ChunkSize)
            {
                await SubmitAsync();
            }
        }
    }

    /// <summary>Appends everything <paramref name="source"/> yields, reading straight into the chunk; returns the byte count.</summary>
    public async Task<long> CopyFromAsync(Stream source, ResumableHash? hash, CancellationToken cancellationToken)
    {
        long total = 0;
        while (true)
        {
            var free = _current.Memory[_fill..];
            var n = await source.ReadAsync(free, cancellationToken);
            if (n == 0)
            {
                return total;
            }
            hash?.Append(free.Span[..n]);
            _fill += n;
            total += n;
            if (_fill == ChunkSize)
            {
                await SubmitAsync();
            }
        }
    }

    /// <summary>Writes what is buffered and syncs the file to disk; returns its length.</summary>
    public async Task<long> CompleteAsync()
    {
        await _pending;
        var length = _position + _fill;
        if (_fill > 0)
        {
            if (_direct)
            {
                var padded = (_fill + Alignment - 1) & ~(Alignment - 1);
                _current.Memory.Span[_fill..padded].Clear();
                await RandomAccess.WriteAsync(_file, _current.Memory[..padded], _position);
                if (padded != _fill)
                {
                    RandomAccess.SetLength(_file, length);
                }
            }
            else
            {
                await RandomAccess.WriteAsync(_file, _current.Memory[.._fill], _position);
            }
            _position = length;
            _fill = 0;
        }
        RandomAccess.FlushToDisk(_file);
        return length;
    }

    private async ValueTask SubmitAsync()
    {
        await _pending;
        var full = _current;
        var at = _position;
        _pending = RandomAccess.WriteAsync(_file, full.Memory, at).AsTask();
        (_current, _spare) = (_spare ?? Rent(), full);
        _position += ChunkSize;
        _fill = 0;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _pending; // A chunk goes back to the pool only once no write reads it.
        }
        catch (Exception)
        {
            // Already surfaced to the writer's caller, or the writer is being abandoned: the file is deleted or cut back.
        }
        _file.Dispose();
        Return(_current);
        if (_spare is not null)
        {
            Return(_spare);
        }
    }

    /// <summary>
    /// Whether the filesystem holding <paramref name="directory"/> takes direct writes as this class makes them: a probe
    /// file written in two aligned chunks, cut to an unaligned length and read back.
    /// </summary>
    public static bool SupportsDirect(string directory)
    {
        if (!OperatingSystem.IsLinux() || DirectFlag == 0)
        {
            return false;
        }
        var probe = Path.Combine(directory, $".direct-probe-{Guid.NewGuid():N}");
        try
        {
            byte[] expected = new byte[2 * Alignment];
            Random.Shared.NextBytes(expected);
            long length;
            {
                var fd = OpenFile(probe, ORdWr | OCloExec | OCreat | OExcl | DirectFlag, 0b110_000_000);
                if (fd < 0)
                {
                    return false;
                }
                using var file = new SafeFileHandle((nint)fd, ownsHandle: true);
                var chunk = Rent();
                try
                {
                    expected.AsSpan(0, Alignment).CopyTo(chunk.Memory.Span);
                    RandomAccess.Write(file, chunk.Memory.Span[..Alignment], 0);
                    expected.AsSpan(Alignment).CopyTo(chunk.Memory.Span);
                    RandomAccess.Write(file, chunk.Memory.Span[..Alignment], Alignment);
                    length = Alignment + 1000;
                    RandomAccess.SetLength(file, length);
                    chunk.Memory.Span[..Alignment].Clear();
                    var read = RandomAccess.Read(file, chunk.Memory.Span[..Alignment], Alignment);
                    if (read != 1000 || !chunk.Memory.Span[..1000].SequenceEqual(expected.AsSpan(Alignment, 1000)))
                    {
                        return false;
                    }
                }
                finally
                {
                    Return(chunk);
                }
            }
            return File.ReadAllBytes(probe).AsSpan().SequenceEqual(expected.AsSpan(0, (int)length));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
        finally
        {
            try
            {
                File.Delete(probe);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>A pinned buffer whose <see cref="Memory"/> starts on an <see cref="Alignment"/> boundary.</summary>
    private sealed class Chunk
    {
        public Chunk()
        {
            var array = GC.AllocateUninitializedArray<byte>(ChunkSize + Alignment, pinned: true);
            var address = Marshal.UnsafeAddrOfPinnedArrayElement(array, 0);
            var skip = (int)((Alignment - (address & (Alignment - 1))) & (Alignment - 1));
            Memory = array.AsMemory(skip, ChunkSize);
        }

        public Memory<byte> Memory { get; }
    }

    private static Chunk Rent()
    {
        if (Pool.TryDequeue(out var chunk))
        {
            Interlocked.Decrement(ref _pooled);
            return chunk;
        }
        return new Chunk();
    }

    private static void Return(Chunk chunk)
    {
        if (Interlocked.Increment(ref _pooled) <= MaxPooled)
        {
            Pool.Enqueue(chunk);
        }
        else
        {
            Interlocked.Decrement(ref _pooled);
        }
    }

    private static IOException Failed(string call, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call}({path}) failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    private const int ORdWr = 2;
    private const int OCreat = 0x40;
    private const int OExcl = 0x80;
    private const int OCloExec = 0x80000;

    /// <summary>O_DIRECT differs between architectures; 0 where it is not known here (no direct writes).</summary>
    private static readonly int DirectFlag = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 or Architecture.X86 => 0x4000,
        Architecture.Arm64 or Architecture.Arm => 0x10000,
        _ => 0,
    };

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int OpenFile(string path, int flags, int mode);
}
