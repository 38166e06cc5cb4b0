using System;

namespace MlPitfalls.Runtime
{
    /// <summary>
    /// Base class of every exception thrown by an MlPitfalls runtime check. Catch this type to handle all of them;
    /// catch a derived type to handle one kind of problem.
    /// </summary>
    public abstract class RuntimeCheckException : Exception
    {
        /// <summary>Creates the exception with a complete, user-facing message.</summary>
        protected RuntimeCheckException(string message) : base(message) { }

        /// <summary>Creates the exception with a complete, user-facing message and the exception that caused it.</summary>
        protected RuntimeCheckException(string message, Exception? inner) : base(message, inner) { }
    }
}
