"""Every remote-cursor colour slot is visible on dark and light backgrounds, in
256-colour terminals and with truecolor, and users can restyle each one."""

from __future__ import annotations

import pytest


def xterm_rgb(index: int) -> tuple[int, int, int]:
    if index < 16:
        return {0: (0, 0, 0), 15: (255, 255, 255), 16: (0, 0, 0)}.get(index, (128, 128, 128))
    if index < 232:
        index -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return steps[index // 36], steps[(index // 6) % 6], steps[index % 6]
    grey = 8 + 10 * (index - 232)
    return grey, grey, grey


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(v: int) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = rgb
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a, b) -> float:
    la, lb = sorted([luminance(a), luminance(b)], reverse=True)
    return (la + 0.05) / (lb + 0.05)


def rgb(number: int) -> tuple[int, int, int]:
    return (number >> 16) & 255, (number >> 8) & 255, number & 255


@pytest.mark.parametrize("background", ["dark", "light"])
@pytest.mark.parametrize("truecolor", [True, False])
def test_every_slot_is_visible(nvim_factory, background, truecolor):
    nvim = nvim_factory()
    nvim.command(f"set {'' if truecolor else 'no'}termguicolors background={background}")
    nvim.command("colorscheme default")  # clears every group; covim defines its own again on ColorScheme
    normal = nvim.api.get_hl(0, {"name": "Normal", "link": False})
    seen = set()
    for i in range(1, 9):
        for group in (f"CoVimCursor{i}", f"CoVimName{i}"):
            hl = nvim.api.get_hl(0, {"name": group, "link": False})
            if truecolor:
                bg, fg = rgb(hl["bg"]), rgb(hl["fg"])
                page = rgb(normal["bg"])  # Neovim's default scheme sets a GUI background
            else:
                bg, fg = xterm_rgb(hl["ctermbg"]), xterm_rgb(hl["ctermfg"])
                # A 256-colour terminal keeps its own background: black or white.
                page = normal.get("ctermbg") and xterm_rgb(normal["ctermbg"]) or (
                    (0, 0, 0) if background == "dark" else (255, 255, 255))
            assert contrast(bg, page) >= 2.0, (group, background, truecolor, bg, page)
            assert contrast(fg, bg) >= 4.5, (group, fg, bg)
            if group.startswith("CoVimCursor"):
                seen.add(bg)
    assert len(seen) == 8  # eight slots, eight colours


def test_users_restyle_each_slot(nvim_factory):
    nvim = nvim_factory()
    nvim.command("highlight CoVimCursor2 guibg=#123456 ctermbg=17")
    nvim.command("highlight! link CoVimName2 ErrorMsg")
    nvim.exec_lua("require('covim').define_highlights()", [])  # as on every ColorScheme
    assert nvim.api.get_hl(0, {"name": "CoVimCursor2"})["bg"] == 0x123456
    assert nvim.api.get_hl(0, {"name": "CoVimName2"})["link"] == "ErrorMsg"
