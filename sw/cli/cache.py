"""``lowbit cache [clean]``: where the compiled simulators are kept, how many and how large; ``clean``
removes them (:func:`lowbit.sw.api.cache`)."""

from lowbit.sw import api

__all__ = ["add_cache_arguments", "run_cache"]


def add_cache_arguments(parser):
    parser.add_argument(
        "action", nargs="?", choices=["show", "clean"], default="show", help="show (default) or clean the cache"
    )


def run_cache(args):
    info = api.cache(clean=args.action == "clean")
    size = f"{info['bytes'] / 2**20:.1f} MiB"
    if args.action == "clean":
        print(f"removed {info['builds']} builds ({size}) from {info['path']}")
    else:
        print(f"{info['path']}: {info['builds']} builds, {size}")
        print("(LOWBIT_CACHE_DIR moves it; lowbit cache clean empties it)")
    return 0
