using System;

namespace MlPitfalls.Runtime
{
    /// <summary>
    /// TorchSharp's native library did not load, so no check (and no tensor operation) can run. The message names the real
    /// cause where it can be found, such as the library that needs a GLIBCXX version the system's libstdc++ does not provide,
    /// and the fix. <see cref="Exception.InnerException"/> is TorchSharp's own exception.
    /// </summary>
    public sealed class TorchSharpLoadException : RuntimeCheckException
    {
        internal TorchSharpLoadException(string message, Exception? inner) : base(message, inner) { }
    }
}
