using System.Collections.Generic;
using TorchSharp;

namespace MlPitfalls.Runtime.Internal
{
    /// <summary>Path names for every module of a model, root included (TorchSharp's named_modules() leaves the root out).</summary>
    internal static class ModuleNames
    {
        public const string RootPath = "";

        public static List<(string Path, torch.nn.Module Module)> All(torch.nn.Module root)
        {
            var list = new List<(string, torch.nn.Module)> { (RootPath, root) };
            var seen = new HashSet<torch.nn.Module>(ReferenceEqualityComparer.Instance) { root };
            foreach (var (name, module) in root.named_modules())
            {
                if (seen.Add(module)) list.Add((name, module));
            }
            return list;
        }

        /// <summary>How a path is shown in messages: the root gets a readable label instead of an empty string.</summary>
        public static string Display(string path, torch.nn.Module module) =>
            path.Length == 0 ? $"<root {module.GetType().Name}>" : path;

        public static string ParentOf(string path)
        {
            int dot = path.LastIndexOf('.');
            return dot < 0 ? RootPath : path.Substring(0, dot);
        }
    }
}
