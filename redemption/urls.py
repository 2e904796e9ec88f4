from django.urls import path

from redemption import views

app_name = "redemption"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("design/redemption-codes/", views.inventory, name="inventory"),
]
