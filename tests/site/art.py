"""Small SVG pictures as data: URLs, so browser tests show real-looking creators without a network."""

from urllib.parse import quote


def svg_data_url(hue: int, *, width=600, height=800, label="") -> str:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},70%,45%)"/><stop offset="1" stop-color="hsl({(hue + 40) % 360},60%,18%)"/>'
        f"</linearGradient></defs>"
        f'<rect width="{width}" height="{height}" fill="url(#g)"/>'
        f'<circle cx="{width * 0.5}" cy="{height * 0.42}" r="{min(width, height) * 0.22}" fill="hsl({hue},80%,80%)" fill-opacity=".35"/>'
        f'<ellipse cx="{width * 0.5}" cy="{height * 1.02}" rx="{width * 0.42}" ry="{height * 0.38}" fill="hsl({hue},80%,85%)" fill-opacity=".3"/>'
        f'<text x="24" y="{height - 28}" font-family="sans-serif" font-size="28" fill="#fff" fill-opacity=".6">{label}</text>'
        f"</svg>"
    )
    return "data:image/svg+xml;charset=utf-8," + quote(svg)
