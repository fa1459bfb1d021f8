from app.htmx import render
from app.main import bp
from app.services.program.program import get_settings, list_tiers


@bp.get("/")
def home():
    return render(
        "main/home.html", "main/_program.html", settings=get_settings(), tiers=list_tiers()
    )
