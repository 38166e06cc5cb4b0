using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Analyses.Gradients;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Infrastructure;

/// <summary>The helpers every rule builds on, tested directly: later rules rely on exactly these behaviours.</summary>
public class SharedMachineryTests
{
    [Fact]
    public void Torch_symbols_are_absent_without_torchsharp_and_resolved_once_per_compilation_with_it()
    {
        Assert.Null(TorchSymbols.For(TestCompilation.Create(referenceTorchSharp: false, "class C { }")));

        var compilation = TestCompilation.Create(sources: "class C { }");
        var torch = TorchSymbols.For(compilation);
        Assert.NotNull(torch);
        Assert.Same(torch, TorchSymbols.For(compilation));
        Assert.Equal("Tensor", torch!.Tensor.Name);
        Assert.NotNull(torch.Module);
        Assert.NotNull(torch.Optimizer);
    }

    [Fact]
    public void Torch_symbols_recognise_derived_types_and_not_look_alikes()
    {
        var compilation = TestCompilation.Create(sources: """
            class MyOptimizer { public void step() { } }
            class Use
            {
                void M(optim.Optimizer sgd, MyOptimizer mine, Linear linear, Parameter p)
                {
                    sgd.step();
                    mine.step();
                    linear.zero_grad();
                    p.backward();
                }
            }
            """);
        var torch = TorchSymbols.For(compilation)!;
        IMethodSymbol Target(string text) => ((IInvocationOperation)TestCompilation.Invocation(compilation, text)).TargetMethod;

        Assert.True(torch.IsOptimizerStep(Target("sgd.step()")));
        Assert.False(torch.IsOptimizerStep(Target("mine.step()")));
        Assert.True(torch.IsModuleZeroGrad(Target("linear.zero_grad()")));
        Assert.True(torch.IsBackward(Target("p.backward()")));
    }

    [Fact]
    public void Enclosing_loop_is_the_innermost_and_stops_at_lambdas()
    {
        var compilation = TestCompilation.Create(sources: """
            class C
            {
                void M(Tensor t)
                {
                    for (int epoch = 0; epoch < 2; epoch++)
                    {
                        t.sum();
                        while (true)
                        {
                            t.mean();
                            Action later = () => t.max();
                        }
                    }
                    t.min();
                }
            }
            """);

        var sum = TestCompilation.Invocation(compilation, "t.sum()");
        var mean = TestCompilation.Invocation(compilation, "t.mean()");
        Assert.IsAssignableFrom<IForLoopOperation>(sum.EnclosingLoop());
        Assert.IsAssignableFrom<IWhileLoopOperation>(mean.EnclosingLoop());
        Assert.Null(TestCompilation.Invocation(compilation, "t.max()").EnclosingLoop());
        Assert.Null(TestCompilation.Invocation(compilation, "t.min()").EnclosingLoop());
    }

    [Fact]
    public void Referenced_symbol_is_the_binding_and_null_for_computed_values()
    {
        var compilation = TestCompilation.Create(sources: """
            class C
            {
                optim.Optimizer field = null!;
                optim.Optimizer Property => field;
                optim.Optimizer Make() => field;

                void M(optim.Optimizer parameter)
                {
                    var local = parameter;
                    local.step();
                    parameter.step();
                    this.field.step();
                    Property.step();
                    Make().step();
                    ((optim.Optimizer)local).zero_grad();
                }
            }
            """);
        ISymbol? Receiver(string text) => ((IInvocationOperation)TestCompilation.Invocation(compilation, text)).ResolvedReceiver().ReferencedSymbol();

        Assert.Equal(SymbolKind.Local, Receiver("local.step()")!.Kind);
        Assert.Equal(SymbolKind.Parameter, Receiver("parameter.step()")!.Kind);
        Assert.Equal(SymbolKind.Field, Receiver("this.field.step()")!.Kind);
        Assert.Equal(SymbolKind.Property, Receiver("Property.step()")!.Kind);
        Assert.Null(Receiver("Make().step()"));
        Assert.Equal("local", Receiver("((optim.Optimizer)local).zero_grad()")!.Name);
    }

    [Fact]
    public void Referenced_symbols_name_every_part_of_a_plain_reference_and_nothing_for_a_computed_one()
    {
        var compilation = TestCompilation.Create(sources: """
            class Session { public optim.Optimizer Optimizer = null!; public static Session Current = null!; }
            class C
            {
                Session session = null!;

                void M(Session[] sessions)
                {
                    this.session.Optimizer.step();
                    Session.Current.Optimizer.step();
                    sessions[0].Optimizer.step();
                }
            }
            """);
        string Names(string text)
        {
            var symbols = ((IInvocationOperation)TestCompilation.Invocation(compilation, text)).ResolvedReceiver().ReferencedSymbols();
            return symbols.IsDefault ? "default" : string.Join(", ", symbols.Select(s => s.Name));
        }

        Assert.Equal("Optimizer, session", Names("this.session.Optimizer.step()"));
        Assert.Equal("Optimizer, Current", Names("Session.Current.Optimizer.step()"));
        Assert.Equal("default", Names("sessions[0].Optimizer.step()"));
    }
}
