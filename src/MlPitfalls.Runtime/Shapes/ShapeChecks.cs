using System;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>
    /// Global switch for shape checks (<c>ExpectShape</c> and module contracts).
    /// </summary>
    /// <remarks>
    /// Two ways to turn checks off:
    /// <list type="bullet">
    /// <item><description><c>ShapeChecks.Enabled = false</c> at run time: each check becomes one static-field test and returns.</description></item>
    /// <item><description>the AppContext switch <c>MlPitfalls.Runtime.DisableShapeChecks</c> (e.g. in the .csproj:
    /// <c>&lt;RuntimeHostConfigurationOption Include="MlPitfalls.Runtime.DisableShapeChecks" Value="true" /&gt;</c>):
    /// read once into a <c>static readonly</c> field, which the JIT treats as a constant, so the check body is removed
    /// from optimised code entirely.</description></item>
    /// </list>
    /// </remarks>
    public static class ShapeChecks
    {
        /// <summary>The AppContext switch name that disables shape checks for the whole process.</summary>
        public const string DisableSwitchName = "MlPitfalls.Runtime.DisableShapeChecks";

        internal static readonly bool DisabledByAppContext = AppContext.TryGetSwitch(DisableSwitchName, out var disabled) && disabled;

        internal static bool s_enabled = true;

        /// <summary>True when shape checks run. Setting it has no effect when the AppContext switch disabled them.</summary>
        public static bool Enabled
        {
            get => !DisabledByAppContext && s_enabled;
            set => s_enabled = value;
        }
    }
}
