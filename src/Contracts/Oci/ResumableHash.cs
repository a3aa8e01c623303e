using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Wharf.Contracts.Oci;

/// <summary>
/// SHA-256 / SHA-512 whose state can be saved after a chunk and restored in any process (DESIGN principle 8):
/// .NET's IncrementalHash cannot export its state, so this calls OpenSSL's SHA256_* / SHA512_* in libcrypto.so.3
/// (FACTS: same speed as IncrementalHash). The state is saved portably — hash words, byte count, pending tail —
/// never as raw struct bytes.
/// </summary>
public sealed unsafe class ResumableHash : IDisposable
{
    private const string Lib = "libcrypto.so.3";
    private const int StateVersion = 1;

    // SHA256_CTX: uint h[8]; uint Nl, Nh; uint data[16]; uint num, md_len  (112 bytes)
    // SHA512_CTX: ulong h[8]; ulong Nl, Nh; byte p[128]; uint num, md_len  (216 bytes)
    private const int CtxSize = 256;

    private readonly byte* _ctx;
    private bool _disposed;

    public string Algorithm { get; }

    public long Length { get; private set; }

    private ResumableHash(string algorithm)
    {
        if (!Digest.IsSupportedAlgorithm(algorithm))
        {
            throw new ArgumentException($"unsupported digest algorithm '{algorithm}'", nameof(algorithm));
        }
        Algorithm = algorithm;
        _ctx = (byte*)NativeMemory.AllocZeroed(CtxSize);
    }

    public static ResumableHash Create(string algorithm)
    {
        var h = new ResumableHash(algorithm);
        var ok = algorithm == Digest.Sha256 ? SHA256_Init(h._ctx) : SHA512_Init(h._ctx);
        if (ok != 1)
        {
            h.Dispose();
            throw new InvalidOperationException("OpenSSL hash init failed");
        }
        return h;
    }

    /// <summary>Checks at start that libcrypto exports what we need (the functions are deprecated in OpenSSL 3).</summary>
    public static void EnsureAvailable()
    {
        using var h = Create(Digest.Sha512);
        h.Append("abc"u8);
        using var h2 = Create(Digest.Sha256);
        h2.Append("abc"u8);
        if (h2.FinishDigest().Hex != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        {
            throw new InvalidOperationException("libcrypto SHA-256 gave a wrong answer");
        }
    }

    public void Append(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (data.IsEmpty)
        {
            return;
        }
        fixed (byte* p = data)
        {
            var ok = Algorithm == Digest.Sha256
                ? SHA256_Update(_ctx, p, (nuint)data.Length)
                : SHA512_Update(_ctx, p, (nuint)data.Length);
            if (ok != 1)
            {
                throw new InvalidOperationException("OpenSSL hash update failed");
            }
        }
        Length += data.Length;
    }

    /// <summary>Finishes a copy of the state, so the hash can go on after the digest is read.</summary>
    public Digest PeekDigest()
    {
        using var copy = Restore(ExportState());
        return copy.FinishDigest();
    }

    public Digest FinishDigest()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var size = Algorithm == Digest.Sha256 ? 32 : 64;
        var md = stackalloc byte[size];
        var ok = Algorithm == Digest.Sha256 ? SHA256_Final(md, _ctx) : SHA512_Final(md, _ctx);
        if (ok != 1)
        {
            throw new InvalidOperationException("OpenSSL hash final failed");
        }
        return new Digest(Algorithm, Convert.ToHexStringLower(new ReadOnlySpan<byte>(md, size)));
    }

    /// <summary>
    /// Portable state: version, algorithm (1 = sha256, 2 = sha512), byte count (8, big-endian),
    /// the eight hash words (big-endian), then the pending tail (&lt; one block).
    /// </summary>
    public byte[] ExportState()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Algorithm == Digest.Sha256)
        {
            var h = (uint*)_ctx;
            var num = (int)h[26];
            var state = new byte[2 + 8 + 32 + num];
            state[0] = StateVersion;
            state[1] = 1;
            BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(2), Length);
            for (var i = 0; i < 8; i++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(state.AsSpan(10 + (4 * i)), h[i]);
            }
            new ReadOnlySpan<byte>(_ctx + 40, num).CopyTo(state.AsSpan(42));
            return state;
        }
        else
        {
            var h = (ulong*)_ctx;
            var num = (int)*(uint*)(_ctx + 208);
            var state = new byte[2 + 8 + 64 + num];
            state[0] = StateVersion;
            state[1] = 2;
            BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(2), Length);
            for (var i = 0; i < 8; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(state.AsSpan(10 + (8 * i)), h[i]);
            }
            new ReadOnlySpan<byte>(_ctx + 80, num).CopyTo(state.AsSpan(74));
            return state;
        }
    }

    public static ResumableHash Restore(ReadOnlySpan<byte> state)
    {
        if (state.Length < 10 || state[0] != StateVersion || state[1] is not (1 or 2))
        {
            throw new FormatException("unknown hash state format");
        }
        var algorithm = state[1] == 1 ? Digest.Sha256 : Digest.Sha512;
        var length = BinaryPrimitives.ReadInt64BigEndian(state[2..]);
        var block = algorithm == Digest.Sha256 ? 64 : 128;
        var wordsEnd = 10 + (algorithm == Digest.Sha256 ? 32 : 64);
        var num = state.Length - wordsEnd;
        if (length < 0 || num < 0 || num >= block || length % block != num)
        {
            throw new FormatException("corrupt hash state");
        }
        var r = Create(algorithm);
        r.Length = length;
        var bits = (UInt128)(ulong)length * 8;
        if (algorithm == Digest.Sha256)
        {
            var h = (uint*)r._ctx;
            for (var i = 0; i < 8; i++)
            {
                h[i] = BinaryPrimitives.ReadUInt32BigEndian(state[(10 + (4 * i))..]);
            }
            h[8] = (uint)(ulong)bits;            // Nl
            h[9] = (uint)((ulong)bits >> 32);    // Nh
            state[wordsEnd..].CopyTo(new Span<byte>(r._ctx + 40, num));
            h[26] = (uint)num;
            h[27] = 32;
        }
        else
        {
            var h = (ulong*)r._ctx;
            for (var i = 0; i < 8; i++)
            {
                h[i] = BinaryPrimitives.ReadUInt64BigEndian(state[(10 + (8 * i))..]);
            }
            h[8] = (ulong)bits;                  // Nl
            h[9] = (ulong)(bits >> 64);          // Nh
            state[wordsEnd..].CopyTo(new Span<byte>(r._ctx + 80, num));
            *(uint*)(r._ctx + 208) = (uint)num;
            *(uint*)(r._ctx + 212) = 64;
        }
        return r;
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            NativeMemory.Free(_ctx);
        }
    }

    [DllImport(Lib)] private static extern int SHA256_Init(byte* c);
    [DllImport(Lib)] private static extern int SHA256_Update(byte* c, byte* data, nuint len);
    [DllImport(Lib)] private static extern int SHA256_Final(byte* md, byte* c);
    [DllImport(Lib)] private static extern int SHA512_Init(byte* c);
    [DllImport(Lib)] private static extern int SHA512_Update(byte* c, byte* data, nuint len);
    [DllImport(Lib)] private static extern int SHA512_Final(byte* md, byte* c);
}
