from django.contrib import admin
from django.urls import include, path

from deliveries.dashboard import delivery_state_view
from deliveries.web import health_views

from . import views

admin.site.site_header = "Instrumetriq delivery"
admin.site.site_title = "Instrumetriq delivery"
# The lists need the width at 1280 px more than a second copy of the front page's model list.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("admin/delivery-state/", admin.site.admin_view(delivery_state_view), name="delivery_state"),
    path("admin/", admin.site.urls),
    path("", views.landing, name="landing"),
    path("healthz", health_views.healthz, name="healthz"),
    path("", include("deliveries.web.urls")),
]
